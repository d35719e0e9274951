/* alertcast console: the map of the areas of the alerts in force.
 * Shapes come from the JSON in #map-data (GeoJSON, circles as points with
 * radius_m). Tiles come from the URL in data-tile-url; with none, or when
 * tiles fail to load (an offline network), the map shows the shapes over a
 * plain background with a graticule: the outline view. */
(function () {
  "use strict";
  var element = document.getElementById("map");
  var source = document.getElementById("map-data");
  if (!element || !source || typeof window.L === "undefined") {
    return;
  }
  var L = window.L;
  var data;
  try {
    data = JSON.parse(source.textContent || "{}");
  } catch (error) {
    data = { type: "FeatureCollection", features: [] };
  }
  var map = L.map(element, { attributionControl: false, worldCopyJump: true });
  var outlineShown = false;

  var STEPS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30];
  var grid = L.layerGroup();

  // Lines of latitude and longitude about eight to a view, redrawn as the view moves.
  function drawGraticule() {
    grid.clearLayers();
    var view = map.getBounds();
    var span = Math.max(view.getNorth() - view.getSouth(), view.getEast() - view.getWest());
    var step = STEPS[STEPS.length - 1];
    for (var i = 0; i < STEPS.length; i += 1) {
      if (STEPS[i] >= span / 8) {
        step = STEPS[i];
        break;
      }
    }
    var style = { color: "#9aa5b1", weight: 1, opacity: 0.6, interactive: false };
    var south = Math.max(-85, Math.floor(view.getSouth() / step) * step);
    var north = Math.min(85, view.getNorth());
    var west = Math.floor(view.getWest() / step) * step;
    var east = view.getEast();
    for (var lat = south; lat <= north; lat += step) {
      L.polyline([[lat, view.getWest()], [lat, east]], style).addTo(grid);
    }
    for (var lon = west; lon <= east; lon += step) {
      L.polyline([[Math.max(-85, view.getSouth()), lon], [north, lon]], style).addTo(grid);
    }
  }

  function showOutline() {
    if (outlineShown) {
      return;
    }
    outlineShown = true;
    element.classList.add("outline");
    element.setAttribute("data-view", "outline");
    grid.addTo(map);
    drawGraticule();
    map.on("moveend", drawGraticule);
    var note = document.createElement("p");
    note.className = "map-note";
    note.textContent = element.getAttribute("data-outline-note") || "";
    element.parentNode.insertBefore(note, element.nextSibling);
  }

  function popup(properties) {
    var box = document.createElement("div");
    var link = document.createElement("a");
    link.href = properties.url;
    link.textContent = "#" + properties.alert_id + " " + properties.title;
    var area = document.createElement("div");
    area.textContent = properties.area;
    box.appendChild(link);
    box.appendChild(area);
    return box;
  }

  // Circles need a map to measure their bounds; a centre and radius give them without one.
  function boundsOf(layer) {
    if (layer instanceof L.Circle) {
      return layer.getLatLng().toBounds(layer.getRadius() * 2);
    }
    if (layer.getBounds) {
      return layer.getBounds();
    }
    return L.latLngBounds([layer.getLatLng(), layer.getLatLng()]);
  }

  var shapes = L.geoJSON(data, {
    style: function (feature) {
      var exercise = feature.properties && feature.properties.exercise;
      return { color: exercise ? "#6b3fb8" : "#b3261e", weight: 2, fillOpacity: 0.25 };
    },
    pointToLayer: function (feature, latlng) {
      var radius = feature.properties && feature.properties.radius_m;
      return radius ? L.circle(latlng, { radius: radius }) : L.circleMarker(latlng);
    },
    onEachFeature: function (feature, layer) {
      layer.bindPopup(popup(feature.properties || {}));
    }
  });

  var features = (data.features || []).length;
  element.setAttribute("data-features", String(features));
  var bounds = null;
  shapes.eachLayer(function (layer) {
    bounds = bounds ? bounds.extend(boundsOf(layer)) : boundsOf(layer);
  });
  if (bounds && bounds.isValid()) {
    map.fitBounds(bounds, { padding: [20, 20], maxZoom: 11 });
  } else {
    map.setView([20, -40], 2);
  }
  shapes.addTo(map);

  // The view is set: now the tiles, or the outline view when there are none.
  var tileUrl = element.getAttribute("data-tile-url");
  if (tileUrl) {
    element.setAttribute("data-view", "tiles");
    var tiles = L.tileLayer(tileUrl, { maxZoom: 18 });
    var loaded = 0;
    var failed = 0;
    var giveUp = function () {
      if (loaded === 0 && !outlineShown) {
        map.removeLayer(tiles);
        showOutline();
      }
    };
    tiles.on("tileload", function () { loaded += 1; });
    tiles.on("tileerror", function () {
      failed += 1;
      if (failed >= 3) {
        giveUp();
      }
    });
    tiles.addTo(map);
    window.setTimeout(giveUp, 8000);
  } else {
    showOutline();
  }
})();
