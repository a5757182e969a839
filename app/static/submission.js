// Live status of a submission: poll the API until the evaluation (and, for an accepted defence, the baseline
// attack's privacy estimate) finishes, then reload to show the results; also reload when an accepted defence's
// figures are shown while its sets are still being written.
(function () {
  const card = document.getElementById("submission");
  if (!card) return;
  const url = card.dataset.statusUrl;
  const pageStatus = card.dataset.status;
  const pageBaseline = card.dataset.baseline || "";
  const pageResults = card.dataset.results === "1";
  const statusEl = document.getElementById("status");
  const progressEl = document.getElementById("progress");
  const finished = (status) => status === "succeeded" || status === "failed";
  let delay = 500;  // a small upload is evaluated in well under a second
  async function poll() {
    try {
      const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.ok) {
        const data = await res.json();
        statusEl.textContent = data.status;
        statusEl.className = "status status-" + data.status;
        progressEl.textContent = data.progress ? "(" + data.progress + ")" : "";
        const baseline = data.baseline ? data.baseline.status : "";
        if ((finished(data.status) && !finished(pageStatus)) || (data.results && !pageResults)) {
          window.location.reload();
          return;
        }
        if (finished(baseline) && baseline !== pageBaseline) {
          window.location.reload();  // the privacy estimate is ready
          return;
        }
        if (finished(data.status) && (baseline === "" || finished(baseline))) return;
      }
    } catch (e) { /* network blip: try again later */ }
    delay = Math.min(delay * 1.3, 5000);
    setTimeout(poll, delay);
  }
  setTimeout(poll, delay);
})();
