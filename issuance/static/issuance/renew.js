// The renewal steps ⑥ to ⑧: 「更新」, the choice among several certificates (R12), renewal
// by the client tool, which proves it holds the current key.
"use strict";

(function () {
  const agent = window.kihonetAgent;

  function show(id, visible) { document.getElementById(id).hidden = !visible; }

  function fail(panel, text, desks) {
    const box = document.getElementById("renew-error");
    box.textContent = text;
    (desks || []).forEach(function (desk) {
      const line = document.createElement("div");
      const phone = document.createElement("a");
      phone.className = "phone alert-link";
      phone.href = "tel:" + desk.phone.replace(/[^0-9+]/g, "");
      phone.textContent = desk.phone;
      line.textContent = (desk.product_line ? desk.product_line + "：" : "") + desk.desk + " ";
      line.appendChild(phone);
      box.appendChild(line);
    });
    show("renew-error", true);
    show("renew-progress", false);
    show("renew-start", true);
  }

  function renew(panel, serial) {
    show("renew-choice", false);
    show("renew-start", false);
    show("renew-progress", true);
    agent.request(panel.dataset.agentUrl, "/renew", { serial: serial }).then(function (result) {
      if (result.ok) {
        agent.rememberInstall(result.data);
        window.location.assign(panel.dataset.completeUrl + "?serial=" + encodeURIComponent(result.data.serial));
      } else {
        fail(panel, agent.describeError(result.data), result.data.desks);
      }
    }).catch(function () { fail(panel, panel.dataset.missing); });
  }

  // The expiry as the customer reads it everywhere else: the date in Japan time, 2029年11月28日
  // (not the UTC date of the ISO string, a day early for expiries after 15:00 UTC).
  const japaneseDate = new Intl.DateTimeFormat("ja-JP", {
    timeZone: "Asia/Tokyo", year: "numeric", month: "long", day: "numeric",
  });

  function statusText(panel, cert) {
    const status = cert.status || (cert.expired ? "expired" : "");
    if (!status) { return ""; }
    return panel.dataset["status" + status.charAt(0).toUpperCase() + status.slice(1)] || status;
  }

  // What the tool holds, with each certificate's status and where it is installed (R12).
  function listHeld(panel, certificates) {
    const list = document.getElementById("renew-held-list");
    list.replaceChildren();
    certificates.forEach(function (cert) {
      const item = document.createElement("li");
      item.className = "list-group-item";
      item.dataset.serial = cert.serial;
      item.dataset.status = cert.status || "";
      const who = document.createElement("div");
      who.className = "fw-bold";
      who.textContent = panel.dataset.userLabel + "：" + cert.user_id + "　" +
        panel.dataset.numberLabel + "：" + cert.management_number;
      const when = document.createElement("div");
      when.textContent = panel.dataset.expiryLabel + "：" +
        japaneseDate.format(new Date(cert.not_after)) + "　" + panel.dataset.statusLabel + "：";
      const status = document.createElement("span");
      status.className = "held-status";
      status.textContent = statusText(panel, cert);
      when.appendChild(status);
      const where = document.createElement("div");
      where.className = "small";
      where.textContent = panel.dataset.installedLabel + "：";
      const places = document.createElement("div");
      places.className = "held-installed";
      if ((cert.installed_in || []).length) {
        const inner = document.createElement("ul");
        inner.className = "mb-0";
        agent.installedList(cert.installed_in, inner);
        places.appendChild(inner);
      } else {
        places.textContent = panel.dataset.notInstalled;
      }
      where.appendChild(places);
      item.append(who, when, where);
      list.appendChild(item);
    });
    show("renew-held", certificates.length > 0);
  }

  function label(panel, cert) {
    let text = panel.dataset.userLabel + "：" + cert.user_id + "　" + panel.dataset.numberLabel + "：" +
      cert.management_number + "　" + panel.dataset.expiryLabel + "：" +
      japaneseDate.format(new Date(cert.not_after));
    const status = statusText(panel, cert);
    if (status && cert.status !== "valid") { text += "（" + status + "）"; }
    return text;
  }

  function choose(panel, certificates) {
    const options = document.getElementById("renew-options");
    options.replaceChildren();
    certificates.forEach(function (cert, index) {
      const item = document.createElement("label");
      item.className = "list-group-item";
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "serial";
      radio.value = cert.serial;
      radio.className = "form-check-input me-2";
      radio.checked = index === 0;
      item.appendChild(radio);
      item.appendChild(document.createTextNode(label(panel, cert)));
      options.appendChild(item);
    });
    show("renew-start", false);
    show("renew-choice", true);
    // The 「更新」 button just pressed is hidden now: the keyboard goes on at the choice.
    options.querySelector("input:checked").focus();
  }

  function start(panel) {
    show("renew-error", false);
    agent.request(panel.dataset.agentUrl, "/certificates").then(function (result) {
      const certificates = (result.data.certificates || []);
      if (result.ok) { listHeld(panel, certificates); }
      if (!result.ok) { fail(panel, agent.describeError(result.data)); }
      else if (certificates.length === 0) { fail(panel, panel.dataset.none); }
      else if (certificates.length === 1) { renew(panel, certificates[0].serial); }
      else { choose(panel, certificates); }
    }).catch(function () { fail(panel, panel.dataset.missing); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.getElementById("renew");
    if (!panel) { return; }
    agent.request(panel.dataset.agentUrl, "/certificates").then(function (result) {
      if (result.ok) { listHeld(panel, result.data.certificates || []); }
    }).catch(function () { /* the tool is not running: 「更新」 says so */ });
    document.getElementById("renew-button").addEventListener("click", function () { start(panel); });
    document.getElementById("renew-ok").addEventListener("click", function () {
      const chosen = document.querySelector("#renew-options input:checked");
      if (chosen) { renew(panel, chosen.value); }
    });
  });
})();
