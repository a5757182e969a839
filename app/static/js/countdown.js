// The banner's next scheduled change: a live countdown and the time in the browser's zone. When the time
// passes, poll the competition state (reads accept the login session) and reload once it has changed.
(function () {
  const timeEl = document.getElementById("next-change-time");
  const countdownEl = document.getElementById("next-change-countdown");
  if (!timeEl || !countdownEl) return;
  const due = new Date(timeEl.getAttribute("datetime"));
  if (isNaN(due.getTime())) return;
  const startPhase = countdownEl.dataset.phase;
  const startRound = countdownEl.dataset.round;
  const startRegistration = countdownEl.dataset.registration;
  const local = document.createElement("span");
  local.className = "local-time";
  local.textContent = " (" + due.toLocaleString() + " your time)";
  timeEl.after(local);

  function pad(n) { return String(n).padStart(2, "0"); }
  function remaining(ms) {
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s % 60);
  }
  let polling = false;
  const pollUntil = due.getTime() + 3 * 60 * 1000;
  async function poll() {
    if (Date.now() > pollUntil) { countdownEl.textContent = "— reload the page to see the change"; return; }
    try {
      const res = await fetch("/api/v1/competition", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.status === 401) return;  // not logged in: the next page load shows the change
      if (res.ok) {
        const state = await res.json();
        if (state.phase !== startPhase || String(state.round) !== startRound ||
            String(state.registration_open) !== startRegistration) {
          window.location.reload();
          return;
        }
      }
    } catch (e) { /* network blip: try again */ }
    setTimeout(poll, 2000);
  }
  function tick() {
    const ms = due.getTime() - Date.now();
    if (ms > 0) {
      countdownEl.textContent = "in " + remaining(ms);
      setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
    } else {
      countdownEl.textContent = "— due now, applying…";
      if (!polling) { polling = true; poll(); }
    }
  }
  tick();
})();
