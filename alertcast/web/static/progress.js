/* alertcast console: live delivery progress on the alert page.
 * Listens to the server-sent events of /api/v1/alerts/{id}/events
 * ("progress" events carrying the progress JSON) and updates the numbers the
 * server rendered; without scripts the page shows those numbers as they were
 * when it loaded. */
(function () {
  "use strict";
  var section = document.getElementById("progress");
  var url = section && section.getAttribute("data-events-url");
  if (!url || typeof window.EventSource === "undefined") {
    return;
  }
  var STATES = ["sent", "delivered", "failed", "dead", "cancelled"];

  function percent(done, total) {
    return total ? Math.floor((done * 100) / total) : 100;
  }

  function setText(root, selector, text) {
    var node = root.querySelector(selector);
    if (node) {
      node.textContent = text;
    }
  }

  function channelRow(body, name) {
    var rows = body.querySelectorAll(".progress-channel");
    for (var i = 0; i < rows.length; i += 1) {
      if (rows[i].getAttribute("data-channel") === name) {
        return rows[i];
      }
    }
    var row = document.createElement("tr");
    row.className = "progress-channel";
    row.setAttribute("data-channel", name);
    var cells = ["channel-name", "channel-percent", "count-pending"]
      .concat(STATES.map(function (s) { return "count-" + s; }))
      .concat(["channel-eta"]);
    cells.forEach(function (cls) {
      var cell = document.createElement("td");
      cell.className = cls;
      row.appendChild(cell);
    });
    row.firstChild.textContent = name;
    body.appendChild(row);
    return row;
  }

  function update(progress) {
    var totals = progress.totals || {};
    var all = percent(totals.done || 0, totals.total || 0);
    setText(section, "#progress-percent", all + "%");
    setText(section, "#progress-done", String(totals.done || 0));
    setText(section, "#progress-total", String(totals.total || 0));
    setText(section, "#progress-state", section.getAttribute(
      progress.finished ? "data-label-finished" : "data-label-running") || "");
    var bar = document.getElementById("progress-bar");
    if (bar) {
      bar.value = all;
      bar.textContent = all + "%";
    }
    var table = document.getElementById("progress-channels");
    var body = table && table.tBodies[0];
    if (!body) {
      return;
    }
    (progress.channels || []).forEach(function (channel) {
      var row = channelRow(body, channel.channel);
      var counts = channel.counts || {};
      setText(row, ".channel-percent", percent(channel.done, channel.total) + "%");
      setText(row, ".count-pending", String((counts.pending || 0) + (counts.claimed || 0)));
      STATES.forEach(function (state) {
        setText(row, ".count-" + state, String(counts[state] || 0));
      });
      setText(row, ".channel-eta",
        channel.eta_s === null || channel.eta_s === undefined ? "—" : Math.round(channel.eta_s) + " s");
    });
  }

  var events = new EventSource(url);
  var lastFinished = false;
  events.addEventListener("progress", function (event) {
    var progress;
    try {
      progress = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    update(progress);
    lastFinished = Boolean(progress.finished);
    // Finished with nothing planned yet may still change (another instance plans it);
    // the server ends that stream by itself.
    if (progress.finished && progress.totals && progress.totals.total > 0) {
      events.close();
    }
  });
  events.addEventListener("timeout", function () {
    events.close();
  });
  // The server ends the stream when nothing more can happen; do not reconnect then.
  events.addEventListener("error", function () {
    if (lastFinished) {
      events.close();
    }
  });
})();
