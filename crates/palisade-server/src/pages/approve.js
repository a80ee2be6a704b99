// The approval page: the token is in the URL fragment (#token=…), which the browser never sends to
// a server; the button posts it once. Fetching the page approves nothing.
"use strict";

(function () {
  const button = document.getElementById("approve-button");
  const status = document.getElementById("status");
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (!token) {
    status.textContent = "This link has no approval token. Open the link from the e-mail again.";
    return;
  }
  button.disabled = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Approving…";
    try {
      const response = await fetch("/auth/devices/approve-link", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token }),
      });
      if (response.status === 204) {
        status.textContent = "Approved. The device can finish signing in now.";
        history.replaceState(null, "", window.location.pathname);
      } else {
        const problem = await response.json().catch(() => ({}));
        status.textContent = "Not approved: " + (problem.detail || response.statusText);
      }
    } catch (e) {
      status.textContent = "The server could not be reached; try again.";
      button.disabled = false;
    }
  });
})();
