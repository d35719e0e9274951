/* alertcast console: the compose form's live preview, exercise look and templates.
 * As the officer types, the form is turned into the same alert JSON the server
 * builds from it (alertcast/web/console/compose_form.py) and sent to
 * POST /api/v1/preview with the session's CSRF token; the answer is shown per
 * route and channel, per language, with length, SMS segments, audience and
 * time to send. Choosing "Exercise" switches the page to the exercise look at
 * once, and a template fills the category and the event. */
(function () {
  "use strict";
  var form = document.getElementById("compose-form");
  var panel = document.getElementById("preview");
  if (!form || !panel) {
    return;
  }
  var BANNER = "exercise-banner";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var timer = null;
  var sequence = 0;
  var controller = null;

  function label(name) {
    return panel.getAttribute("data-label-" + name) || name;
  }

  function value(name) {
    var field = form.elements.namedItem(name);
    return field && typeof field.value === "string" ? field.value.trim() : "";
  }

  function exerciseLook() {
    var exercise = value("status") === "Exercise";
    document.body.classList.toggle("exercise", exercise);
    document.body.classList.toggle("actual", !exercise);
    var banner = document.getElementById(BANNER);
    if (exercise && !banner) {
      banner = document.createElement("div");
      banner.id = BANNER;
      banner.setAttribute("role", "alert");
      banner.textContent = panel.getAttribute("data-exercise-banner");
      var header = document.querySelector("header.top");
      header.parentNode.insertBefore(banner, header.nextSibling);
    } else if (!exercise && banner) {
      banner.parentNode.removeChild(banner);
    }
  }

  function applyTemplate() {
    var select = document.getElementById("template");
    var option = select && select.options[select.selectedIndex];
    if (!option || !option.value) {
      return;
    }
    document.getElementById("category").value = option.getAttribute("data-category");
    var event = document.getElementById("event");
    if (!event.value.trim() || event.getAttribute("data-from-template") === "1") {
      event.value = option.getAttribute("data-event");
      event.setAttribute("data-from-template", "1");
    }
  }

  function geocodes(text) {
    var result = [];
    var parts = text.split(/[\s,;]+/);
    for (var i = 0; i < parts.length; i += 1) {
      if (!parts[i]) {
        continue;
      }
      var at = parts[i].indexOf(":");
      var scheme = at > 0 ? parts[i].slice(0, at).trim().toUpperCase() : "";
      var code = at > 0 ? parts[i].slice(at + 1).trim().toUpperCase() : "";
      if (!scheme || !code) {
        return null;
      }
      result.push({ name: scheme, value: code });
    }
    return result;
  }

  function polygon(text) {
    var points = [];
    var pairs = text.split(/\s+/).filter(Boolean);
    for (var i = 0; i < pairs.length; i += 1) {
      var bits = pairs[i].split(",");
      var lat = Number(bits[0]);
      var lon = Number(bits[1]);
      if (bits.length !== 2 || !isFinite(lat) || !isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
        return null;
      }
      points.push([lat, lon]);
    }
    if (points.length && (points[0][0] !== points[points.length - 1][0] || points[0][1] !== points[points.length - 1][1])) {
      points.push([points[0][0], points[0][1]]);
    }
    return points.length >= 4 ? points : null;
  }

  function alertJson() {
    var required = ["event", "headline", "description", "area_desc"];
    for (var i = 0; i < required.length; i += 1) {
      if (!value(required[i])) {
        return null;
      }
    }
    var codes = geocodes(value("area_geocode"));
    var polygonText = value("area_polygon");
    var ring = polygonText ? polygon(polygonText) : [];
    var hours = Number(value("expires_hours").replace(",", "."));
    if (codes === null || ring === null || !(hours > 0 && hours <= 336)) {
      return null;
    }
    return {
      sender: panel.getAttribute("data-sender"),
      status: value("status"),
      msg_type: "Alert",
      scope: "Public",
      infos: [{
        language: value("language"),
        category: [value("category")],
        event: value("event"),
        urgency: value("urgency"),
        severity: value("severity"),
        certainty: value("certainty"),
        expires: new Date(Date.now() + hours * 3600 * 1000).toISOString(),
        headline: value("headline"),
        description: value("description"),
        instruction: value("instruction") || null,
        areas: [{ area_desc: value("area_desc"), geocodes: codes, polygons: ring.length ? [ring] : [] }]
      }]
    };
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function counter(parent, name, className, text) {
    var item = element("span", "counter");
    item.appendChild(document.createTextNode(label(name) + ": "));
    item.appendChild(element("strong", className, text));
    parent.appendChild(item);
  }

  function seconds(eta) {
    if (eta === null || eta === undefined) {
      return label("unknown");
    }
    if (eta < 90) {
      return Math.ceil(eta) + " s";
    }
    return Math.ceil(eta / 60) + " min";
  }

  function message(text) {
    panel.textContent = "";
    panel.appendChild(element("p", "empty", text));
  }

  function show(preview) {
    panel.textContent = "";
    var summary = element("p", "preview-summary");
    counter(summary, "approvals", "preview-approvals", preview.approvals_required);
    panel.appendChild(summary);
    (preview.warnings || []).forEach(function (warning) {
      panel.appendChild(element("p", "preview-warning", warning));
    });
    var routes = preview.routes || [];
    if (!routes.length) {
      panel.appendChild(element("p", "empty", label("empty")));
    }
    routes.forEach(function (route) {
      var box = element("div", "preview-route");
      box.setAttribute("data-channel", route.channel);
      box.setAttribute("data-route", route.route);
      box.setAttribute("data-kind", route.kind);
      box.appendChild(element("h3", null, route.channel + " (" + route.kind + ") · " + route.route));
      var meta = element("p", "preview-meta");
      counter(meta, "audience", "preview-audience",
        route.audience === null || route.audience === undefined ? label("unknown") : route.audience);
      counter(meta, "eta", "preview-eta", seconds(route.eta_s));
      counter(meta, "approval", "preview-approval", route.approval);
      if (route.cost) {
        counter(meta, "cost", "preview-cost", route.cost.total.toFixed(2) + " " + route.cost.currency);
      }
      if (route.held) {
        counter(meta, "held", "preview-held", route.held);
      }
      box.appendChild(meta);
      (route.renderings || []).forEach(function (rendering) {
        var part = element("div", "preview-rendering");
        part.setAttribute("data-language", rendering.language);
        part.appendChild(element("span", "preview-language", rendering.language));
        part.appendChild(element("pre", "preview-text", rendering.text));
        var counts = element("p", "preview-counters");
        counter(counts, "length", "preview-length", rendering.length);
        counter(counts, "segments", "preview-segments",
          rendering.sms ? rendering.sms.segments : rendering.parts);
        if (rendering.sms) {
          counts.appendChild(element("span", "preview-encoding", rendering.sms.encoding));
        }
        part.appendChild(counts);
        (rendering.problems || []).forEach(function (problem) {
          part.appendChild(element("p", "preview-problem", problem));
        });
        box.appendChild(part);
      });
      panel.appendChild(box);
    });
  }

  function refresh() {
    var body = alertJson();
    if (body === null) {
      message(label("incomplete"));
      return;
    }
    sequence += 1;
    var mine = sequence;
    if (controller) {
      controller.abort();
    }
    controller = typeof AbortController === "undefined" ? null : new AbortController();
    panel.setAttribute("aria-busy", "true");
    fetch(panel.getAttribute("data-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: JSON.stringify(body),
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      return response.json().then(function (answer) {
        return { ok: response.ok, answer: answer };
      });
    }).then(function (result) {
      if (mine !== sequence) {
        return;
      }
      panel.removeAttribute("aria-busy");
      if (result.ok) {
        show(result.answer);
      } else {
        message(label("error") + " " + (result.answer.detail || result.answer.title || ""));
      }
    }).catch(function (error) {
      if (mine === sequence && error.name !== "AbortError") {
        panel.removeAttribute("aria-busy");
        message(label("error") + " " + error.message);
      }
    });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 400);
  }

  form.addEventListener("input", function (event) {
    if (event.target && event.target.id === "event") {
      event.target.removeAttribute("data-from-template");
    }
    schedule();
  });
  form.addEventListener("change", function (event) {
    if (event.target && event.target.id === "status") {
      exerciseLook();
    }
    if (event.target && event.target.id === "template") {
      applyTemplate();
    }
    schedule();
  });
  exerciseLook();
  refresh();
})();
