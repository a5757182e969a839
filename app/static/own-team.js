// Highlight the viewer's own team in the leaderboard (the table is cached for everyone, so the page says which).
(function () {
  const view = document.getElementById("leaderboard-view");
  if (!view || !view.dataset.ownTeamId) return;
  view.querySelectorAll("tr[data-team-id]").forEach(function (row) {
    if (row.dataset.teamId === view.dataset.ownTeamId) row.classList.add("own-team");
  });
})();
