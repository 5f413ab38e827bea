/* The map of a job's page: the imagery, the extracted roads on top, a legend.
 * Everything it draws comes inside the page (#map-data); Leaflet is served by the service. */
(function () {
  "use strict";
  var ROAD_COLOUR = "#ff0000";
  var element = document.getElementById("map-data");
  if (!element || typeof L === "undefined") {
    return;
  }
  var data = JSON.parse(element.textContent);
  var map = L.map("map", { zoomSnap: 0.25, attributionControl: true });
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  var overlays = {};
  var bounds = null;

  if (data.imagery) {
    var imagery = L.imageOverlay(data.imagery.url, data.imagery.bounds, { interactive: false });
    imagery.addTo(map);
    overlays[data.imagery.title] = imagery;
    bounds = L.latLngBounds(data.imagery.bounds);
  }

  var roads = L.geoJSON(data.roads, {
    style: function () {
      return { color: ROAD_COLOUR, weight: 3, opacity: 1, lineCap: "round" };
    },
    onEachFeature: function (feature, layer) {
      var p = feature.properties || {};
      var text = [];
      if (p.length_m !== undefined) {
        text.push("length " + Number(p.length_m).toFixed(1) + " m");
      }
      if (p.mean_probability !== undefined) {
        text.push("mean probability " + Number(p.mean_probability).toFixed(2));
      }
      if (text.length) {
        layer.bindPopup(text.join("<br>"));
      }
    }
  }).addTo(map);
  overlays["Extracted roads"] = roads;
  if (data.roads.features && data.roads.features.length) {
    bounds = bounds ? bounds.extend(roads.getBounds()) : roads.getBounds();
  }
  if (bounds && bounds.isValid()) {
    map.fitBounds(bounds, { padding: [8, 8], animate: false });
  } else {
    map.setView([0, 0], 2);
  }
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  var legend = L.control({ position: "bottomleft" });
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "legend");
    var rows = ['<span class="swatch road"></span> Extracted roads (' + data.segments +
                " segments, " + data.length_km + " km)"];
    if (data.imagery) {
      rows.push('<span class="swatch imagery"></span> ' + data.imagery.title);
    }
    div.innerHTML = rows.join("<br>");
    return div;
  };
  legend.addTo(map);

  // Where the roads are drawn on the page (the middle point of each segment, in CSS pixels
  // from the page's top left corner), for scripts and tests that look at a rendering.
  var box = document.getElementById("map").getBoundingClientRect();
  var points = [];
  roads.eachLayer(function (layer) {
    var lines = layer.getLatLngs();
    var line = Array.isArray(lines[0]) ? lines[0] : lines;
    if (line.length) {
      var p = map.latLngToContainerPoint(line[Math.floor(line.length / 2)]);
      points.push([Math.round(p.x + box.left + window.scrollX),
                   Math.round(p.y + box.top + window.scrollY)]);
    }
  });
  var container = document.getElementById("map");
  container.setAttribute("data-road-points", JSON.stringify(points));
  container.setAttribute("data-map-ready", "true");
})();
