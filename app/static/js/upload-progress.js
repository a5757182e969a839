// Upload forms marked data-upload-progress send their file with XMLHttpRequest (fetch reports no upload progress)
// to show a progress bar, the bytes sent, the percentage and the time left, and a Cancel button. The request is
// the form's own (same URL, same multipart fields, its CSRF token included); its answer is what the page would
// have shown: the redirect to the submission's status page is followed, and a refusal (the form again with its
// error, or an error page) replaces the page's content, so no message is lost. Without JavaScript the form
// posts as usual. A file over the server's limit (data-max-bytes) is refused before anything is sent.
(function () {
  const TEXT_EVERY_MS = 1000; // the text under the bar changes at most this often
  const ANNOUNCE_EVERY_MS = 10000; // and screen readers hear how far it is at most this often
  const RATE_WINDOW_MS = 5000; // the speed behind the time left is measured over this much recent time

  function size(bytes) {
    if (bytes < 1024 * 1024) return Math.max(0, Math.round(bytes / 1024)) + " kB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function duration(seconds) {
    if (seconds < 60) return Math.max(1, Math.round(seconds)) + " s";
    const minutes = Math.floor(seconds / 60), rest = Math.round(seconds % 60);
    return minutes + " min" + (rest ? " " + rest + " s" : "");
  }

  function enhance(form) {
    const box = form.querySelector(".upload-progress");
    const bar = box && box.querySelector("progress");
    const text = box && box.querySelector(".upload-progress-text");
    const live = box && box.querySelector("[aria-live]");
    const cancel = box && box.querySelector(".upload-cancel");
    const input = form.querySelector("input[type=file]");
    if (!bar || !text || !live || !cancel || !input || typeof FormData === "undefined") return;
    const limit = Number(form.dataset.maxBytes) || 0;
    const controls = form.querySelectorAll("input[type=submit], button[type=submit], input[type=file]");
    const submit = form.querySelector("input[type=submit], button[type=submit]");
    let xhr = null, samples = [], lastText = 0, lastAnnounced = 0;

    // Shown at once; read out at once too unless it is a progress report, which is read out now and then.
    function say(message, report) {
      const now = Date.now();
      text.textContent = message;
      lastText = now;
      if (!report || now - lastAnnounced >= ANNOUNCE_EVERY_MS) {
        live.textContent = message;
        lastAnnounced = now;
      }
    }

    function fieldError(message) {
      const field = input.closest(".field") || input.parentNode;
      let shown = field.querySelector(".upload-size-error");
      if (!message) {
        if (shown) shown.remove();
        if (!field.querySelector(".error")) field.classList.remove("has-error");
        input.removeAttribute("aria-invalid");
        return;
      }
      if (!shown) {
        shown = document.createElement("p");
        shown.className = "error upload-size-error";
        shown.setAttribute("role", "alert");
        field.appendChild(shown);
      }
      shown.textContent = message;
      field.classList.add("has-error");
      input.setAttribute("aria-invalid", "true");
    }

    function tooLarge() {
      const file = input.files && input.files[0];
      if (!file || !limit || file.size <= limit) return null;
      return "This file is " + size(file.size) + ", larger than the " + size(limit) +
        " the platform accepts: compress or trim it.";
    }

    function busy(on) {
      controls.forEach(function (c) { c.disabled = on; });
      form.setAttribute("aria-busy", on ? "true" : "false");
      cancel.disabled = !on;
    }

    function progress(event) {
      if (!event.lengthComputable) return;
      bar.max = event.total;
      bar.value = event.loaded;
      const now = Date.now();
      samples.push([now, event.loaded]);
      while (samples.length > 2 && now - samples[1][0] > RATE_WINDOW_MS) samples.shift();
      if (now - lastText < TEXT_EVERY_MS && event.loaded < event.total) return;
      const [t0, sent0] = samples[0];
      const rate = now > t0 ? (event.loaded - sent0) / ((now - t0) / 1000) : 0;
      const percent = Math.floor((100 * event.loaded) / event.total);
      let message = size(event.loaded) + " of " + size(event.total) + " sent (" + percent + " %)";
      if (rate > 0 && event.loaded < event.total) {
        message += ", about " + duration((event.total - event.loaded) / rate) + " left";
      }
      say(message, true);
    }

    function finish(message) {
      const focusLost = document.activeElement === cancel || document.activeElement === document.body;
      xhr = null;
      busy(false);
      say(message);
      if (focusLost && submit) submit.focus(); // the keyboard is back where it was, ready to try again
    }

    // The answer's page, shown as the browser would have shown it after a plain post: its <main> and title.
    function show(answer) {
      const main = answer && answer.querySelector("main");
      if (!main) {
        finish("The server answered " + (xhr ? xhr.status : "") + " without a page: try again in a moment.");
        return;
      }
      document.title = answer.title;
      const current = document.querySelector("main");
      current.replaceWith(document.adoptNode(main));
      document.querySelectorAll("form[data-upload-progress]").forEach(enhance);
      const target = main.querySelector(".has-error input") || main.querySelector("[role=alert], h1");
      if (target) {
        if (!target.matches("input")) target.setAttribute("tabindex", "-1");
        target.focus();
      }
    }

    input.addEventListener("change", function () { fieldError(tooLarge()); });

    form.addEventListener("submit", function (event) {
      if (xhr) { event.preventDefault(); return; } // already sending: no second upload
      const refusal = tooLarge();
      if (refusal) {
        event.preventDefault();
        fieldError(refusal);
        input.focus();
        return;
      }
      event.preventDefault();
      fieldError(null);
      const data = new FormData(form, event.submitter || undefined);
      const request = (xhr = new XMLHttpRequest());
      request.open(form.method || "post", form.action);
      request.responseType = "document";
      request.upload.addEventListener("progress", progress);
      request.upload.addEventListener("load", function () {
        bar.removeAttribute("value"); // indeterminate while the server checks the file
        cancel.disabled = true; // the file is there: the server's answer says what became of it
        say("Sent. The platform is checking the file…");
      });
      request.addEventListener("load", function () {
        if (request !== xhr) return;
        const redirected = request.responseURL && request.responseURL !== form.action;
        if (request.status >= 200 && request.status < 300 && redirected) {
          say("Checked. Opening the submission's status page…");
          window.location.assign(request.responseURL);
          return;
        }
        show(request.response);
      });
      request.addEventListener("error", function () {
        if (request !== xhr) return;
        finish("The upload failed: the connection was lost or the server closed it" +
          (limit ? " (it refuses files over " + size(limit) + ")" : "") + ". Check your connection and try again.");
      });
      request.addEventListener("abort", function () {
        if (request !== xhr) return;
        finish("Upload cancelled: the platform did not keep the file.");
      });
      samples = [[Date.now(), 0]];
      bar.max = 1;
      bar.value = 0;
      box.hidden = false;
      busy(true);
      cancel.focus(); // the button clicked is disabled now: keep the keyboard on what can be done
      lastAnnounced = 0;
      say("Starting the upload…", true);
      request.send(data);
    });

    cancel.addEventListener("click", function () { if (xhr) xhr.abort(); });
    // Back from the status page, the browser may restore this page as it was left: mid-upload, disabled.
    window.addEventListener("pageshow", function (event) {
      if (!event.persisted) return;
      xhr = null;
      busy(false);
      box.hidden = true;
    });
  }

  document.querySelectorAll("form[data-upload-progress]").forEach(enhance);
})();
