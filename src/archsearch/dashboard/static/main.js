// archsearch dashboard: the router (#/ runs, #/run/ID, #/run/ID/trial/N).
"use strict";
(function () {
  let current = null;
  function route() {
    if (current) current.stop();
    const main = document.getElementById("main");
    main.replaceChildren();
    delete main.dataset.drawn;
    const parts = (location.hash.slice(1) || "/").split("/").filter((p) => p).map(decodeURIComponent);
    try {
      if (parts[0] === "run" && parts.length >= 2 && parts[2] === "trial") current = AS.trialView(main, parts[1], +parts[3]);
      else if (parts[0] === "run" && parts.length >= 2) current = AS.runView(main, parts[1]);
      else current = AS.runsView(main);
    } catch (e) {
      main.append(AS.el("p", {class: "err", text: "error: " + e.message}));
      current = {stop: () => {}};
    }
    window.scrollTo(0, 0);
  }
  window.addEventListener("hashchange", route);
  route();
})();
