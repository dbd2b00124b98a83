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
          window.location.assign(panel.dataset.completeUrl);
          return;
        }
        fail(describeError(result.data));
      })
      .catch(function () {
        fail(panel.dataset.missing);
      });
  }

  window.kihonetAgent = { request: agentRequest, describeError: describeError };

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
  });
})();
