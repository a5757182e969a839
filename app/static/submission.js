// Live status of a submission: poll the API until the evaluation finishes, then reload to show the results.
(function () {
  const card = document.getElementById("submission");
  if (!card) return;
  const url = card.dataset.statusUrl;
  const statusEl = document.getElementById("status");
  const progressEl = document.getElementById("progress");
  let delay = 1000;
  async function poll() {
    try {
      const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.ok) {
        const data = await res.json();
        statusEl.textContent = data.status;
        statusEl.className = "status status-" + data.status;
        progressEl.textContent = data.progress ? "(" + data.progress + ")" : "";
        if (data.status === "succeeded" || data.status === "failed") {
          window.location.reload();
          return;
        }
      }
    } catch (e) { /* network blip: try again later */ }
    delay = Math.min(delay * 1.3, 5000);
    setTimeout(poll, delay);
  }
  setTimeout(poll, delay);
})();
