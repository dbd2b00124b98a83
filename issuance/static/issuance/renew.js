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
      const phone = document.createElement("span");
      phone.className = "phone";
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
    const body = document.querySelector("#renew-held-table tbody");
    body.replaceChildren();
    certificates.forEach(function (cert) {
      const row = document.createElement("tr");
      row.dataset.serial = cert.serial;
      row.dataset.status = cert.status || "";
      const who = document.createElement("td");
      who.textContent = cert.user_id + "／" + cert.management_number;
      const expiry = document.createElement("td");
      expiry.textContent = japaneseDate.format(new Date(cert.not_after));
      const status = document.createElement("td");
      status.className = "held-status";
      status.textContent = statusText(panel, cert);
      const where = document.createElement("td");
      where.className = "held-installed";
      const places = cert.installed_in || [];
      if (places.length) {
        const list = document.createElement("ul");
        list.className = "list-unstyled mb-0";
        agent.installedList(places, list);
        where.appendChild(list);
      } else {
        where.textContent = panel.dataset.notInstalled;
      }
      row.append(who, expiry, status, where);
      body.appendChild(row);
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
