// Talks to the client tool (証明書取得クライアントツール) on the customer's own PC.
// The tool listens on 127.0.0.1 only and answers only this site's origin.
"use strict";

(function () {
  function agentRequest(agentUrl, path, body) {
    const options = body === undefined
      ? { method: "GET" }
      : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    return fetch(agentUrl + path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, data: data };
      });
    });
  }

  function describeError(data) {
    const message = data.message || "";
    return data.status_code ? message + "（ステータスコード：" + data.status_code + "）" : message;
  }

  function showToolStatus(panel) {
    const status = document.getElementById("agent-status");
    const howto = document.getElementById("agent-howto");
    agentRequest(panel.dataset.agentUrl, "/status").then(function (result) {
      if (!result.ok) { throw new Error("not ready"); }
      status.textContent = status.dataset.ready;
      status.className = "alert alert-success mb-0";
      panel.dataset.state = "ready";
    }).catch(function () {
      status.textContent = status.dataset.missing;
      status.className = "alert alert-warning mb-0";
      howto.hidden = false;
      panel.dataset.state = "missing";
    });
  }

  // The tool's answer to /enroll or /renew says where it installed the certificate
  // (installed_in) or why it could not (install_error); the completion page shows it.
  const INSTALL_KEY = "kihonet.install.";

  function rememberInstall(data) {
    try {
      sessionStorage.setItem(INSTALL_KEY + data.serial, JSON.stringify({
        installed_in: data.installed_in || [], install_error: data.install_error || null,
      }));
    } catch (e) { /* storage off: the completion page asks the tool instead */ }
  }

  function recalledInstall(serial) {
    try {
      const raw = sessionStorage.getItem(INSTALL_KEY + serial);
      return raw ? JSON.parse(raw) : null;
    } catch (e) { return null; }
  }

  function installedList(places, list) {
    list.replaceChildren();
    places.forEach(function (place) {
      const item = document.createElement("li");
      item.className = "installed-place";
      item.dataset.store = place.store || "";
      const label = document.createElement("span");
      label.className = "fw-bold";
      label.textContent = place.label || place.store || "";
      item.appendChild(label);
      if (place.location) {
        const where = document.createElement("div");
        where.className = "small text-muted text-break";
        where.textContent = place.location;
        item.appendChild(where);
      }
      list.appendChild(item);
    });
  }

  function renderInstall(section, info) {
    const places = info.installed_in || [];
    const error = info.install_error;
    installedList(places, document.getElementById("installed-in"));
    document.getElementById("installed").hidden = places.length === 0;
    if (error) {
      const admin = error.code === "admin_rights_required";
      const message = document.getElementById("install-error-message");
      message.textContent = admin ? "" : (error.message || "");
      message.hidden = admin;
      document.getElementById("install-admin").hidden = !admin;
    }
    document.getElementById("install-failed").hidden = !error;
    section.hidden = places.length === 0 && !error;
    section.dataset.state = error ? "failed" : (places.length ? "installed" : "none");
  }

  function retryInstall(section, button) {
    button.disabled = true;
    agentRequest(section.dataset.agentUrl, "/install", { serial: section.dataset.serial })
      .then(function (result) {
        if (result.ok || result.data.installed_in) {
          rememberInstall(Object.assign({ serial: section.dataset.serial }, result.data));
          renderInstall(section, result.data);
        } else {
          renderInstall(section, { installed_in: [], install_error: {
            code: result.data.status_code, message: result.data.message } });
        }
      })
      .catch(function () {
        renderInstall(section, { installed_in: [], install_error: {
          code: "agent_missing", message: button.dataset.missing } });
      })
      .finally(function () { button.disabled = false; });
  }

  function showInstallResult(section) {
    const button = document.getElementById("install-retry");
    button.addEventListener("click", function () { retryInstall(section, button); });
    const serial = section.dataset.serial;
    const remembered = recalledInstall(serial);
    if (remembered) { renderInstall(section, remembered); return; }
    agentRequest(section.dataset.agentUrl, "/certificates").then(function (result) {
      const held = (result.data.certificates || []).filter(function (c) { return c.serial === serial; });
      if (held.length) { renderInstall(section, { installed_in: held[0].installed_in, install_error: null }); }
    }).catch(function () { section.dataset.state = "unknown"; });
  }

  function issueCertificate(panel) {
    const status = document.getElementById("issue-status");
    const error = document.getElementById("issue-error");
    const retry = document.getElementById("issue-retry");
    // 「…取得しています。このままお待ちください。」 only while the tool is at work, never
    // beside an error.
    function fail(message) {
      status.hidden = true;
      error.textContent = message;
      error.hidden = false;
      retry.hidden = false;
      panel.dataset.state = "error";
    }
    error.hidden = true;
    retry.hidden = true;
    status.hidden = false;
    panel.dataset.state = "working";
    agentRequest(panel.dataset.agentUrl, "/enroll", { token: panel.dataset.token })
      .then(function (result) {
        if (result.ok) {
          rememberInstall(result.data);
          window.location.assign(panel.dataset.completeUrl);
          return;
        }
        fail(describeError(result.data));
      })
      .catch(function () {
        fail(panel.dataset.missing);
      });
  }

  // The completion pages offer auto-renewal: the button under the explanation is the consent;
  // the tool registers its daily and at-log-on run (or removes it) and answers the state.
  function showAutoRenewal(section, enabled) {
    document.getElementById("auto-renewal-offer").hidden = enabled;
    document.getElementById("auto-renewal-on").hidden = !enabled;
    section.dataset.state = enabled ? "enabled" : "disabled";
  }

  function setAutoRenewal(section, button, enable) {
    const done = document.getElementById("auto-renewal-done");
    const error = document.getElementById("auto-renewal-error");
    done.hidden = true;
    error.hidden = true;
    button.disabled = true;
    const body = enable ? { enable: true, consent: true } : { enable: false };
    agentRequest(section.dataset.agentUrl, "/auto-renew", body)
      .then(function (result) {
        if (!result.ok) {
          error.textContent = describeError(result.data);
          error.hidden = false;
          return;
        }
        showAutoRenewal(section, result.data.enabled === true);
        // The tool tells the server with a signed check-in per certificate; one that did not
        // get through is said (on: the next run tells it; off: the command line can).
        const unreported = (result.data.reports || []).some(function (r) { return r.reported === false; });
        const data = section.dataset;
        done.textContent = enable
          ? (unreported ? data.enabledUnreported : data.enabled)
          : (unreported ? data.disabledUnreported : data.disabled);
        done.className = "alert mb-3 " + (unreported ? "alert-warning" : "alert-success");
        section.dataset.reported = unreported ? "partly" : "all";
        done.hidden = false;
      })
      .catch(function () {
        error.textContent = section.dataset.missing;
        error.hidden = false;
      })
      .finally(function () { button.disabled = false; });
  }

  function offerAutoRenewal(section) {
    const enableButton = document.getElementById("auto-renewal-enable");
    const disableButton = document.getElementById("auto-renewal-disable");
    enableButton.addEventListener("click", function () { setAutoRenewal(section, enableButton, true); });
    disableButton.addEventListener("click", function () { setAutoRenewal(section, disableButton, false); });
    agentRequest(section.dataset.agentUrl, "/auto-renew").then(function (result) {
      if (result.ok) { showAutoRenewal(section, result.data.enabled === true); }
    }).catch(function () { /* the tool is not running: the offer stays, pressing says so */ });
  }

  window.kihonetAgent = {
    request: agentRequest, describeError: describeError,
    rememberInstall: rememberInstall, installedList: installedList,
  };

  document.addEventListener("DOMContentLoaded", function () {
    const toolPanel = document.getElementById("client-tool");
    if (toolPanel) { showToolStatus(toolPanel); }
    const issuePanel = document.getElementById("issue");
    if (issuePanel) {
      document.getElementById("issue-retry-button").addEventListener("click", function () {
        issueCertificate(issuePanel);
      });
      issueCertificate(issuePanel);
    }
    const installSection = document.getElementById("install-result");
    if (installSection) { showInstallResult(installSection); }
    const autoRenewal = document.getElementById("auto-renewal");
    if (autoRenewal) { offerAutoRenewal(autoRenewal); }
  });
})();
