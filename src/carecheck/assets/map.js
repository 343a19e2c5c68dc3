(function () {
  'use strict';
  var cc = window.carecheck = {};
  var DRAW_ORDER = [1, 0, 2];
  var SHAPES = {
    square: function (s) { return '<rect x="2" y="2" width="' + (s - 4) + '" height="' + (s - 4)
      + '" rx="3"'; },
    circle: function (s) { return '<circle cx="' + s / 2 + '" cy="' + s / 2 + '" r="'
      + (s / 2 - 2) + '"'; },
    diamond: function (s) { var h = s / 2; return '<polygon points="' + h + ',1 ' + (s - 1)
      + ',' + h + ' ' + h + ',' + (s - 1) + ' 1,' + h + '"'; },
    triangle: function (s) { return '<polygon points="' + s / 2 + ',1 ' + (s - 1) + ','
      + (s - 2) + ' 1,' + (s - 2) + '"'; },
    hexagon: function (s) { var p = [], h = s / 2, r = h - 1.5;
      for (var k = 0; k < 6; k++) { var a = Math.PI / 3 * k;
        p.push((h + r * Math.cos(a)).toFixed(1) + ',' + (h + r * Math.sin(a)).toFixed(1)); }
      return '<polygon points="' + p.join(' ') + '"'; },
    star: function (s) { var p = [], h = s / 2;
      for (var k = 0; k < 10; k++) { var a = Math.PI / 5 * k - Math.PI / 2,
        r = k % 2 ? h * 0.45 : h - 1;
        p.push((h + r * Math.cos(a)).toFixed(1) + ',' + (h + r * Math.sin(a)).toFixed(1)); }
      return '<polygon points="' + p.join(' ') + '"'; }
  };

  function fmt(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) { return '–'; }
    return Number(v).toLocaleString('en-US', {maximumFractionDigits: digits || 0,
      minimumFractionDigits: digits || 0});
  }
  function distance(m) {
    if (m === null || m === undefined || m < 0) { return '–'; }
    return m >= 1000 ? fmt(m / 1000, 1) + ' km' : fmt(m) + ' m';
  }

  cc.init = function (map, D) {
    [['ccReach', 410], ['ccDemand', 450], ['ccLabels', 640]].forEach(function (p) {
      if (!map.getPane(p[0])) {
        var pane = map.createPane(p[0]);
        pane.style.zIndex = p[1];
        pane.style.pointerEvents = 'none';
      }
    });
    L.control.scale({imperial: false, maxWidth: 150}).addTo(map);
    var title = L.DomUtil.create('div', 'cc-title', map.getContainer());
    title.innerHTML = D.title;
    L.DomEvent.disableClickPropagation(title);
    L.DomEvent.disableScrollPropagation(title);
    cc.panel(map, 'bottomleft', 'cc-summary', D.summary);
    var legend = cc.panel(map, 'bottomright', 'cc-legend', D.legend);
    var slots = legend.getContainer().querySelectorAll('.cc-legend-symbol');
    for (var k = 0; k < slots.length; k++) {
      var t = +slots[k].getAttribute('data-t'), sel = slots[k].getAttribute('data-sel') === '1';
      slots[k].innerHTML = cc.symbol(D, {t: t, tier: -1, expand: false}, sel, 16);
    }
  };

  cc.panel = function (map, position, className, html) {
    var Panel = L.Control.extend({
      options: {position: position},
      onAdd: function () {
        var div = L.DomUtil.create('div', 'cc-box ' + className);
        div.innerHTML = html;
        var head = div.querySelector('.cc-box-title');
        if (head) {
          // everything below the title in one body, which folding hides (text nodes too)
          var body = L.DomUtil.create('div', 'cc-box-body');
          while (head.nextSibling) { body.appendChild(head.nextSibling); }
          div.appendChild(body);
          cc.collapsible(div, head);
        }
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      }
    });
    return new Panel().addTo(map);
  };

  // A panel folds up to its title: a click (or Enter / Space) on the title toggles it.
  cc.collapsible = function (box, head) {
    head.setAttribute('role', 'button');
    head.setAttribute('tabindex', '0');
    head.setAttribute('aria-expanded', String(!L.DomUtil.hasClass(box, 'cc-collapsed')));
    function toggle(e) {
      if (e.type === 'keydown' && e.key !== 'Enter' && e.key !== ' ') { return; }
      L.DomEvent.preventDefault(e);
      cc.setCollapsed(box, !L.DomUtil.hasClass(box, 'cc-collapsed'));
    }
    L.DomEvent.on(head, 'click keydown', toggle);
  };

  cc.setCollapsed = function (box, collapsed) {
    (collapsed ? L.DomUtil.addClass : L.DomUtil.removeClass)(box, 'cc-collapsed');
    var head = box.querySelector('.cc-box-title');
    if (head) { head.setAttribute('aria-expanded', String(!collapsed)); }
  };

  function shareColour(D, share) {
    var s = D.style;
    if (share === null || share === undefined) { return s.noData; }
    for (var k = 0; k < s.breaks.length; k++) { if (share < s.breaks[k]) { return s.ramp[k]; } }
    return s.ramp[s.ramp.length - 1];
  }

  cc.choropleth = function (D, t) {
    return L.geoJSON(D.regions.geojson, {
      style: function (f) {
        return {color: '#4d4d4d', weight: 1.2, opacity: 0.9, fillOpacity: 0.55,
          fillColor: shareColour(D, D.regions.info[f.properties.i].share[t])};
      },
      onEachFeature: function (f, layer) {
        var info = D.regions.info[f.properties.i];
        layer.bindPopup(info.popup, {maxWidth: 420});
        layer.bindTooltip(info.tips[t], {sticky: true, direction: 'top', opacity: 0.9});
        layer.on('mouseover', function () { layer.setStyle({weight: 3}); });
        layer.on('mouseout', function () { layer.setStyle({weight: 1.2}); });
      }
    });
  };

  cc.regionLabels = function (D) {
    var group = L.layerGroup();
    D.regions.info.forEach(function (info) {
      L.marker([info.lat, info.lon], {pane: 'ccLabels', interactive: false, keyboard: false,
        icon: L.divIcon({className: 'cc-region-label', html: '<span>' + info.name + '</span>',
          iconSize: null})}).addTo(group);
    });
    return group;
  };

  // Sites the plan opens are large (by tier) and carry their build-order label; existing ones stay small and
  // hollow so that 300 of them do not hide the plan.
  function siteSize(D, s, selected) {
    var tier = D.tiers[s.tier], size = tier ? tier.size : D.style.siteSize;
    return selected ? Math.max(size, 20) : Math.round(6 + size * 0.2);  // room for "A10"
  }

  cc.symbol = function (D, s, selected, size) {
    var type = D.types[s.t] || {colour: '#555', shape: 'circle'};
    var tier = D.tiers[s.tier];
    if (!size) { size = siteSize(D, s, selected); }
    var fill = selected ? type.colour : '#ffffff', line = selected ? '#ffffff' : type.colour;
    var shape = (SHAPES[type.shape] || SHAPES.circle)(size);
    var svg = '<svg width="' + size + '" height="' + size + '" viewBox="0 0 ' + size + ' '
      + size + '">' + shape + ' fill="' + fill + '" stroke="' + line + '" stroke-width="'
      + (selected ? 2 : 1.8) + '"' + (selected ? '' : ' fill-opacity="0.85"') + '/>';
    // a new site shows its build-order label (A3 = third of the first type), as the tables do
    var text = selected ? (s.n || (tier ? tier.letter : '')) : '';
    if (text && size >= 14) {
      var scale = text.length <= 1 ? 0.48 : text.length === 2 ? 0.42 : 0.34;
      svg += '<text x="' + size / 2 + '" y="' + (size / 2 + size * 0.15) + '" text-anchor="middle"'
        + ' font-size="' + Math.max(8, Math.round(size * scale)) + '" font-weight="700" fill="'
        + '#ffffff">' + text + '</text>';
    }
    if (s.expand) {
      svg += '<circle cx="' + (size - 1) + '" cy="1" r="5" fill="#ffd54f" stroke="#333"'
        + ' stroke-width="0.8"/><text x="' + (size - 1) + '" y="4" text-anchor="middle"'
        + ' font-size="9" font-weight="700" fill="#333">+</text>';
    }
    return svg + '</svg>';
  };

  cc.sites = function (D, group) {
    var layer = L.featureGroup(), selected = group === 'selected';
    D.sites[group].forEach(function (s) {
      var size = siteSize(D, s, selected);
      var marker = L.marker([s.lat, s.lon], {
        icon: L.divIcon({className: 'cc-site ' + (selected ? 'cc-selected-site'
          : 'cc-existing-site') + ' cc-type-' + s.t, html: cc.symbol(D, s, selected, size),
          iconSize: [size, size]}),
        riseOnHover: true, zIndexOffset: selected ? 1000 : 0
      });
      marker.bindPopup(s.popup, {maxWidth: 360});
      marker.bindTooltip(s.tip, {direction: 'top', offset: [0, -size / 2]});
      marker.on('add', function () { marker.getElement().setAttribute('data-site-id', s.id); });
      marker.addTo(layer);
    });
    return layer;
  };

  cc.reach = function (D, t) {
    var layer = L.featureGroup(), colour = D.types[t].colour;
    ['existing', 'selected'].forEach(function (group) {
      var selected = group === 'selected';
      D.sites[group].forEach(function (s) {
        if (s.t !== t) { return; }
        var style = {pane: 'ccReach', interactive: false,
          color: colour, weight: selected ? 2 : 1, opacity: selected ? 0.9 : 0.6,
          dashArray: selected ? null : '4 4', fillColor: colour,
          fillOpacity: selected ? 0.08 : 0};
        if (s.area) {  // reach along roads: the area from which the site is within reach
          L.geoJSON(s.area, {style: function () { return style; }}).addTo(layer);
        } else if (s.r > 0) {
          style.radius = s.r;
          L.circle([s.lat, s.lon], style).addTo(layer);
        }
      });
    });
    return layer;
  };

  function prepare(D) {
    var d = D.demand;
    if (d._px) { return d; }
    var n = d.x.length, crs = L.CRS.EPSG3857;
    d._px = new Float64Array(n); d._py = new Float64Array(n); d._r = new Float32Array(n);
    for (var i = 0; i < n; i++) {
      var p = crs.latLngToPoint(L.latLng(d.lat0 + d.y[i] / d.scale, d.lon0 + d.x[i] / d.scale), 0);
      d._px[i] = p.x; d._py[i] = p.y;
      d._r[i] = 1.6 + 5.4 * Math.sqrt(Math.min(Math.max(d.w[i] || 0, 0) / d.wref, 1.5));
    }
    return d;
  }

  // All demand points of one type on one canvas, redrawn after each move: 100,000 points
  // are a few array passes instead of 100,000 DOM or Leaflet objects.
  var DemandLayer = L.Layer.extend({
    initialize: function (D, t) { this._D = D; this._t = t; },
    onAdd: function (map) {
      prepare(this._D);
      this._canvas = L.DomUtil.create('canvas', 'cc-demand leaflet-zoom-hide');
      this._canvas.setAttribute('data-type', this._D.types[this._t].key);
      map.getPane('ccDemand').appendChild(this._canvas);
      map.on('moveend resize', this._draw, this);
      // Capture the click before Leaflet hands it to the region polygon underneath (whose
      // popup would stop it from reaching the map); markers and controls keep their clicks.
      this._onClick = L.Util.bind(this._click, this);
      map.getContainer().addEventListener('click', this._onClick, true);
      this._draw();
    },
    onRemove: function (map) {
      map.off('moveend resize', this._draw, this);
      map.getContainer().removeEventListener('click', this._onClick, true);
      L.DomUtil.remove(this._canvas);
      this._canvas = null;
    },
    _draw: function () {
      var started = performance.now();
      var map = this._map, size = map.getSize(), ratio = window.devicePixelRatio || 1;
      var canvas = this._canvas, topLeft = map.containerPointToLayerPoint([0, 0]);
      L.DomUtil.setPosition(canvas, topLeft);
      canvas.width = Math.round(size.x * ratio); canvas.height = Math.round(size.y * ratio);
      canvas.style.width = size.x + 'px'; canvas.style.height = size.y + 'px';
      var ctx = canvas.getContext('2d');
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      var zoom = map.getZoom(), scale = map.options.crs.scale(zoom) / map.options.crs.scale(0);
      var origin = map.getPixelOrigin(), ox = origin.x + topLeft.x, oy = origin.y + topLeft.y;
      var grow = Math.min(3, Math.max(0.55, Math.pow(2, (zoom - 11) / 2)));
      var d = this._D.demand, status = d.status[this._t], n = d._px.length;
      if (!this._hx || this._hx.length !== n) {
        this._hx = new Float32Array(n); this._hy = new Float32Array(n);
        this._hr = new Float32Array(n); this._hi = new Int32Array(n);
      }
      var m = 0, colours = this._D.style.status;
      // outline first, then fill: only the outer edge of each group of points stays white
      ctx.lineWidth = 1.4; ctx.strokeStyle = 'rgba(255,255,255,0.9)';
      for (var o = 0; o < DRAW_ORDER.length; o++) {
        var code = 48 + DRAW_ORDER[o];
        ctx.beginPath();
        for (var i = 0; i < n; i++) {
          if (status.charCodeAt(i) !== code) { continue; }
          var x = d._px[i] * scale - ox, y = d._py[i] * scale - oy, r = d._r[i] * grow;
          if (x < -r || y < -r || x > size.x + r || y > size.y + r) { continue; }
          ctx.moveTo(x + r, y);
          ctx.arc(x, y, r, 0, 6.283185307179586);
          this._hx[m] = x; this._hy[m] = y; this._hr[m] = r; this._hi[m] = i; m++;
        }
        if (grow > 0.7) { ctx.stroke(); }
        ctx.fillStyle = colours[DRAW_ORDER[o]];
        ctx.fill();
      }
      this._drawn = m;
      this.lastDrawMs = performance.now() - started;
    },
    // Printing: Chromium prints a canvas redrawn during 'beforeprint' as an opaque white
    // sheet that hides the region polygons beneath, so the points print as an image.
    _print: function (on) {
      if (!this._canvas) { return; }
      if (on) {
        var image = this._image || L.DomUtil.create('img', 'cc-demand-print');
        image.src = this._canvas.toDataURL('image/png');
        image.style.cssText = this._canvas.style.cssText;
        image.style.position = 'absolute';
        image.style.left = '0';
        image.style.top = '0';
        this._canvas.parentNode.insertBefore(image, this._canvas);
        this._canvas.style.display = 'none';
        this._image = image;
      } else if (this._image) {
        L.DomUtil.remove(this._image);
        this._image = null;
        this._canvas.style.display = '';
      }
    },
    _click: function (e) {
      if (e.target.closest && e.target.closest('.leaflet-marker-icon, .leaflet-control, '
        + '.leaflet-popup, .cc-title')) { return; }
      var map = this._map, p = map.mouseEventToContainerPoint(e), best = -1;
      for (var k = this._drawn - 1; k >= 0; k--) {
        var dx = this._hx[k] - p.x, dy = this._hy[k] - p.y, r = this._hr[k] + 2;
        if (dx * dx + dy * dy <= r * r) { best = this._hi[k]; break; }
      }
      if (best < 0) { return; }
      e.stopPropagation();
      L.popup({maxWidth: 360}).setLatLng(map.containerPointToLatLng(p))
        .setContent(this._popup(best)).openOn(map);
    },
    _popup: function (i) {
      var D = this._D, d = D.demand, T = D.labels;
      var rows = '';
      if (d.region && d.region[i] >= 0) {
        rows += '<tr><th>' + T.region + '</th><td>' + D.regionNames[d.region[i]] + '</td></tr>';
      }
      rows += '<tr><th>' + T.weight + '</th><td>' + fmt(d.w[i], 1).replace(/\.0$/, '')
        + '</td></tr>';
      D.types.forEach(function (type, t) {
        var code = d.status[t].charCodeAt(i) - 48, near = d.nearest[t], extra = '';
        if (near && near.i[i] >= 0) {
          extra = ' <span class="cc-muted">' + T.nearest + ' ' + near.ids[near.i[i]] + ', '
            + distance(near.m[i]) + '</span>';
        }
        rows += '<tr><th>' + type.label + '</th><td><span class="cc-dot" style="background:'
          + D.style.status[code] + '"></span>' + T['status_' + code] + extra + '</td></tr>';
      });
      var name = d.name ? d.name[i] : '';
      return '<div class="cc-popup cc-demand-popup"><div class="cc-popup-title">'
        + (name || d.id[i]) + '</div><div class="cc-muted">' + d.id[i] + '</div><table>'
        + rows + '</table></div>';
    }
  });
  cc.demand = function (D, t) { return new DemandLayer(D, t); };

  // ------------------------------------------------------------------ online base maps

  // A transparent pixel in place of a tile that cannot load: no broken-image icons offline.
  var BLANK = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7';

  cc.tiles = function (D, k) {
    var source = D.tiles[k], loaded = 0, failed = 0;
    var layer = L.tileLayer(source.url, {attribution: source.attribution,
      subdomains: source.subdomains || 'abc', maxNativeZoom: source.maxZoom || 18, maxZoom: 20,
      errorTileUrl: BLANK, className: 'cc-tiles'});
    layer.on('tileload', function (e) {
      if (e.tile.getAttribute('src') === BLANK) { return; }  // the stand-in for a failed tile
      loaded++;
      note(layer._map, null);
    });
    layer.on('tileerror', function () {
      failed++;
      if (!loaded && failed === 1) { note(layer._map, D.labels.tiles_failed); }
    });
    layer.on('add', function () { loaded = 0; failed = 0; });
    layer.on('remove', function () { note(layer._map, null); });
    return layer;
  };

  // One quiet line in the layer control: the base map did not load (no internet, usually).
  function note(map, text) {
    if (!map) { return; }
    var control = map.getContainer().querySelector('.leaflet-control-layers');
    if (!control) { return; }
    var line = control.querySelector('.cc-tile-note');
    if (!text) { if (line) { L.DomUtil.remove(line); } return; }
    if (!line) { line = L.DomUtil.create('div', 'cc-tile-note', control); }
    line.innerHTML = text;
  }

  // ------------------------------------------------------------------ layout and print

  // Called once every control is on the map: the layer control gets a title that folds it,
  // the view is fitted around the panels, and printing re-fits the view to the page.
  cc.ready = function (map, D) {
    var control = map.getContainer().querySelector('.leaflet-control-layers');
    if (control) {
      var head = L.DomUtil.create('div', 'cc-box-title cc-layers-title');
      head.innerHTML = D.labels.layers;
      control.insertBefore(head, control.firstChild);
      cc.collapsible(control, head);
    }
    var size = map.getSize();
    if (control && (size.x < 1280 || size.y < 800 || overlaps(control, titleOf(map)))) {
      cc.setCollapsed(control, true);
    }
    var bounds = cc.bounds(D);
    if (!bounds) { return; }
    var fit = cc.fit(map, bounds, margin(D));
    if (fit.share < 0.25) {  // a small window: fold the panels and leave the map the room
      map.getContainer().querySelectorAll('.cc-box, .leaflet-control-layers').forEach(
        function (box) { cc.setCollapsed(box, true); });
      cc.fit(map, bounds, margin(D));
    }
    cc.fitted = {center: map.getCenter(), zoom: map.getZoom(), bounds: bounds};
    watchPrint(map, D);
  };

  function titleOf(map) { return map.getContainer().querySelector('.cc-title'); }

  function overlaps(a, b) {
    if (!a || !b) { return false; }
    var r = a.getBoundingClientRect(), s = b.getBoundingClientRect();
    return r.left < s.right && s.left < r.right && r.top < s.bottom && s.top < r.bottom;
  }

  // Room around each site marker: half the largest symbol, and its expansion badge.
  function margin(D) {
    var size = D.style.siteSize;
    D.tiers.forEach(function (t) { size = Math.max(size, t.size); });
    return Math.ceil(size / 2) + 8;
  }

  // What the first view shows: the regions (or the demand) and every site.
  cc.bounds = function (D) {
    var bounds = D.bounds ? L.latLngBounds(D.bounds) : null;
    ['selected', 'existing'].forEach(function (group) {
      D.sites[group].forEach(function (s) {
        var p = L.latLng(s.lat, s.lon);
        bounds = bounds ? bounds.extend(p) : L.latLngBounds(p, p);
      });
    });
    return bounds && bounds.isValid() ? bounds : null;
  };

  // The boxes that sit on the map: each corner's stack of controls, and the title.
  cc.panelRects = function (map) {
    var container = map.getContainer(), origin = container.getBoundingClientRect();
    var nodes = container.querySelectorAll('.leaflet-control-container > div, .cc-title');
    var rects = [];
    for (var k = 0; k < nodes.length; k++) {
      var r = nodes[k].getBoundingClientRect();
      if (r.width > 0 && r.height > 0) {
        rects.push({left: r.left - origin.left, top: r.top - origin.top,
          right: r.right - origin.left, bottom: r.bottom - origin.top});
      }
    }
    return rects;
  };

  // Fit `bounds` as large as it goes while no part of it lies under a panel. A panel is
  // cleared by keeping the bounds to one side of it (right of, left of, below or above),
  // which is a padding on that side; every choice per panel is tried (4^panels, a few
  // hundred at most) and the one giving the largest scale wins.
  cc.fit = function (map, bounds, room) {
    var size = map.getSize(), rects = cc.panelRects(map);
    var nw = map.project(bounds.getNorthWest(), 0), se = map.project(bounds.getSouthEast(), 0);
    var width = Math.max(se.x - nw.x, 1e-9), height = Math.max(se.y - nw.y, 1e-9);
    var best = null;
    function search(k, pad) {
      if (k === rects.length) {
        var w = size.x - pad[0] - pad[2], h = size.y - pad[1] - pad[3];
        if (w <= 0 || h <= 0) { return; }
        var scale = Math.min(w / width, h / height);
        if (!best || scale > best.scale) {
          best = {scale: scale, pad: pad.slice(), share: w * h / (size.x * size.y)};
        }
        return;
      }
      var r = rects[k];
      // [left, top, right, bottom] padding that keeps the bounds clear of this panel
      var sides = [[0, r.right + room], [1, r.bottom + room], [2, size.x - r.left + room],
        [3, size.y - r.top + room]];
      sides.forEach(function (side) {
        var next = pad.slice();
        next[side[0]] = Math.max(next[side[0]], side[1]);
        search(k + 1, next);
      });
    }
    search(0, [room, room, room, room]);
    if (!best) { best = {scale: 0, pad: [room, room, room, room], share: 0}; }
    map.fitBounds(bounds, {paddingTopLeft: [best.pad[0], best.pad[1]],
      paddingBottomRight: [best.pad[2], best.pad[3]], animate: false});
    return best;
  };

  // Printing puts the map alone on a landscape page (print stylesheet). Before the print
  // layout ('beforeprint') the map takes the page's size (D.page, the paper of the @page rule),
  // hides what the page does not show, and fits the view the user had (or the whole area, if
  // the first view was not changed) around the title and legend: changes made during the
  // print layout itself are not all painted (Chromium leaves SVG polygons out). A print media
  // change without 'beforeprint' (emulation) fits the map as the print layout sized it.
  // Afterwards the screen view returns.
  function watchPrint(map, D) {
    var container = map.getContainer(), screenView = null;
    function enter(sized) {
      if (screenView) { return; }
      var moved = !cc.fitted || map.getZoom() !== cc.fitted.zoom
        || !map.getCenter().equals(cc.fitted.center, 1e-7);
      screenView = {center: map.getCenter(), zoom: map.getZoom(),
        bounds: moved ? map.getBounds() : cc.fitted.bounds};
      map.closePopup();
      L.DomUtil.addClass(container, 'cc-printing');
      if (sized && D.page) {
        container.style.width = D.page.width + 'px';
        container.style.height = D.page.height + 'px';
      }
      map.invalidateSize({pan: false});
      cc.fit(map, screenView.bounds, moved ? 4 : margin(D));
      demandLayers(map, true);
    }
    function leave() {
      if (!screenView) { return; }
      var view = screenView;
      screenView = null;
      demandLayers(map, false);
      L.DomUtil.removeClass(container, 'cc-printing');
      container.style.width = '';
      container.style.height = '';
      map.invalidateSize({pan: false});
      map.setView(view.center, view.zoom, {animate: false});
    }
    window.addEventListener('beforeprint', function () { enter(true); });
    window.addEventListener('afterprint', leave);
    var query = window.matchMedia ? window.matchMedia('print') : null;
    if (query) {
      var change = function (e) { if (e.matches) { enter(false); } else { leave(); } };
      if (query.addEventListener) { query.addEventListener('change', change); }
      else if (query.addListener) { query.addListener(change); }
    }
    cc.print = {enter: enter, leave: leave};
  }

  function demandLayers(map, printing) {
    map.eachLayer(function (layer) { if (layer instanceof DemandLayer) { layer._print(printing); } });
  }
})();
