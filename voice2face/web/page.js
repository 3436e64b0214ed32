() => {
  // 1. Bring results into view. After "Draw faces" (or stopping a live recording) the faces, or the
  //    error, arrive below the fold on a phone; once the new result is on the page, scroll so that
  //    its first row is fully visible, unless it already is.
  let waitingSince = null;  // the result on the page when the visitor asked for a new one
  const result = () => document.querySelector('#faces .v2f-faces:not(.v2f-example), #faces .v2f-error');
  document.addEventListener('click', (event) => {
    if (event.target.closest('#draw, #live-voice .stop-button, #examples button, #examples tr')) waitingSince = result() || 'none';
  }, true);
  new MutationObserver(() => {
    const shown = result();
    if (waitingSince === null || !shown || shown === waitingSince) return;
    waitingSince = null;
    const firstRow = shown.querySelector('.v2f-face') || shown;
    if (shown.getBoundingClientRect().top < 0 || firstRow.getBoundingClientRect().bottom > window.innerHeight) {
      document.querySelector('#faces').scrollIntoView({block: 'start'});
    }
  }).observe(document.body, {childList: true, subtree: true});

  //    Starting a live recording brings the face so far, its caption and the recorder into view together.
  document.addEventListener('click', (event) => {
    if (event.target.closest('#live-voice button.record-button')) {
      setTimeout(() => document.querySelector('#live-tab').scrollIntoView({block: 'start'}), 50);
    }
  }, true);

  //    The charts and the strip come wrapped in buttons with no name (Gradio's): name them, give their
  //    pictures alt text, and point the settle chart at its numbers as text (#settle-data, in the notes).
  const pictures = {
    '#live-face': 'The face drawn so far from the recording',
    '#settle': 'Chart: how much the face changes as you speak longer',
    '#spectrogram': 'Picture of the speech, with where each length ends',
    '#strip': 'All faces side by side, with their lengths',
  };
  const namePictures = () => {
    for (const [selector, name] of Object.entries(pictures)) {
      for (const button of document.querySelectorAll(`${selector} button`)) {
        if (!button.getAttribute('aria-label')) button.setAttribute('aria-label', name);
        if (selector === '#settle' && document.querySelector('#settle-data')) button.setAttribute('aria-describedby', 'settle-data');
      }
      for (const img of document.querySelectorAll(`${selector} img`)) if (!img.alt) img.alt = name;
    }
    // the player's speed button is named "Adjust playback speed to ..." while it shows "1x": name what it shows
    for (const speed of document.querySelectorAll('.playback')) {
      const shown = speed.innerText.trim();
      if (shown && !(speed.getAttribute('aria-label') || '').includes(shown)) speed.setAttribute('aria-label', `Playback speed ${shown}`);
    }
    // an empty picture's placeholder carries a name but no role
    for (const empty of document.querySelectorAll('div.empty[aria-label]:not([role])')) empty.setAttribute('role', 'img');
  };
  namePictures();
  new MutationObserver(namePictures).observe(document.body, {childList: true, subtree: true});

  // 2. "Draw faces" right after stopping a recording: the recording is still on its way to the server
  //    (its player appears once it has arrived), and a request sent now would carry no audio. Hold the
  //    click until the recording is in place, then make it.
  const recordingInFlight = () =>
    !!document.querySelector('#voice [data-testid=waveform-controls]') && !document.querySelector('#voice audio');
  document.addEventListener('click', (event) => {
    const draw = event.target.closest('#draw');
    if (!draw || !recordingInFlight()) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    const since = Date.now();
    const wait = setInterval(() => {
      if (!recordingInFlight() || Date.now() - since > 30000) { clearInterval(wait); draw.click(); }
    }, 100);
  }, true);

  // 3. A file that is not a recording gets our message beside the upload box, not the list of
  //    MIME types the browser widget would flash for a few seconds.
  const soundFile = /\.(wav|wave|flac|ogg|oga|opus|mp3|webm|weba|m4a|mp4|aac|aif|aiff|mka|caf|amr|3gp)$/i;
  const showRefusal = (text) => {
    let box = document.querySelector('#upload-refusal');
    if (!text) { if (box) box.remove(); return; }
    if (!box) {
      box = document.createElement('div');
      box.id = 'upload-refusal';
      box.className = 'v2f-error';
      box.setAttribute('role', 'alert');
      document.querySelector('#voice').insertAdjacentElement('afterend', box);
    }
    box.innerHTML = '<strong>Not a sound file</strong><p></p>';
    box.querySelector('p').textContent = text;
    box.scrollIntoView({block: 'center'});  // on a phone it landed below the screen
  };
  const check = (files, event) => {
    const bad = [...(files || [])].find((f) => !(f.type.startsWith('audio/') || soundFile.test(f.name)));
    if (!bad) { showRefusal(null); return; }
    event.preventDefault();
    event.stopImmediatePropagation();
    showRefusal(`"${bad.name}" is not a recording. Upload a sound file (__FORMATS__), or record with the microphone.`);
  };
  document.addEventListener('change', (event) => {
    if (event.target.matches && event.target.matches('#voice input[type=file]')) check(event.target.files, event);
  }, true);
  document.addEventListener('drop', (event) => {
    if (event.target.closest && event.target.closest('#voice') && event.dataTransfer) check(event.dataTransfer.files, event);
  }, true);
  document.addEventListener('click', (event) => {
    if (event.target.closest('#draw, #voice button.record')) showRefusal(null);
  }, true);

  // 4. While a new clip is read, the reading and sliders on the page are still the previous clip's; while the
  //    Live tab records, everything beside it is. Mark them so (CSS dims them and says whose they are) until
  //    the draw has ended (`UNMARK_PREVIOUS`, run by the page after each draw).
  document.addEventListener('click', (event) => {
    const mark = (selector) => { const e = document.querySelector(selector); if (e) e.classList.add('v2f-previous'); };
    if (event.target.closest('#draw, #examples button, #examples tr')) ['#reading', '#tune'].forEach(mark);
    if (event.target.closest('#live-voice button.record-button')) mark('#results');
  }, true);

  // 5. The recorder's drop zone comes before its "Upload file" button in the page, so a keyboard visitor who
  //    chose that button had to go back for it: choosing it brings the focus to the drop zone, where Enter
  //    opens the file chooser; Tab goes on from there to Record and Draw.
  document.addEventListener('click', (event) => {
    if (!event.target.closest('#voice button[aria-label="Upload file"]') || event.detail !== 0) return;  // keyboard only
    setTimeout(() => {
      const zone = document.querySelector('#voice button.upload-container');
      if (zone) zone.focus();
    }, 50);
  }, true);

  // 6. A waiting visitor is told why, in words: Gradio's "queue: 3/5" becomes "2 visitors ahead of you" in a
  //    line above the faces; and the full-size download says while its faces are drawn (seconds on a CPU).
  const queueLine = () => {
    const tracker = [...document.querySelectorAll('[data-testid="status-tracker"]')].map((e) => e.innerText)
      .find((text) => /queue:\s*\d+\s*\/\s*\d+/.test(text));
    let line = document.querySelector('#v2f-queue');
    if (!tracker) { if (line) line.remove(); return; }
    const [, place] = tracker.match(/queue:\s*(\d+)\s*\/\s*(\d+)/);
    const ahead = Number(place) - 1;
    const words = ahead <= 0 ? 'The server is busy: your request is next.'
      : `The server is busy: ${ahead} visitor${ahead === 1 ? '' : 's'} ahead of you.`;
    if (!line) {
      line = document.createElement('p');
      line.id = 'v2f-queue';
      line.className = 'v2f-status';
      line.setAttribute('role', 'status');
      const results = document.querySelector('#results');
      if (results) results.prepend(line);
    }
    if (line.textContent !== words) line.textContent = words;
  };
  setInterval(queueLine, 250);
  document.addEventListener('click', (event) => {
    const button = event.target.closest('#strip-download');
    if (!button) return;
    button.dataset.label = button.dataset.label || button.textContent;
    button.textContent = 'Drawing the faces at full size… the download starts by itself';
  }, true);

  // 7. Stop on the Live tab takes effect STOP_AFTER_MS after the visitor's click. Gradio's recorder drops what
  //    is still on its way when it stops (a chunk being uploaded, the last part of a second): 0.2-0.4 s of the
  //    end of every recording never reached the server. Meanwhile the chunks in flight arrive.
  const STOP_AFTER_MS = 200;
  document.addEventListener('click', (event) => {
    const stop = event.target.closest('#live-voice button.stop-button');
    if (!stop) return;
    if (stop.dataset.v2fStopNow) { delete stop.dataset.v2fStopNow; return; }  // ours, after the wait: Gradio's to handle
    event.preventDefault();
    event.stopImmediatePropagation();
    if (stop.dataset.v2fStopping) return;  // clicked again while stopping
    stop.dataset.v2fStopping = '1';
    setTimeout(() => {
      delete stop.dataset.v2fStopping;
      const now = document.querySelector('#live-voice button.stop-button');
      if (!now) return;
      now.dataset.v2fStopNow = '1';
      now.click();
    }, STOP_AFTER_MS);
  }, true);

  // 8. Everything above is in place (names, handlers): say so, so a test (or a tool) that reads the page
  //    waits for the page as a visitor meets it, not for the moment Gradio's own markup arrives.
  document.documentElement.dataset.v2fReady = '1';
}
