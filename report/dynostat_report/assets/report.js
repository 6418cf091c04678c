// Puts the report's figures on screen. The figures themselves are built by dynostat-report
// in Python; this script turns their time offsets into dates, draws each dyno's chart as it
// scrolls into view, and keeps every chart on the same time range when one is zoomed.
(function () {
  "use strict";
  performance.mark("dynostat-start");

  var data = JSON.parse(document.getElementById("dynostat-data").textContent);
  var base = data.start_ms;
  var fullRange = [toMs(data.range[0]), toMs(data.range[1])];
  var currentRange = null;
  var drawn = [];
  var syncing = false;
  var state = {
    total: data.dynos.length,
    rendered: 0,
    overviewReady: data.overview === null,
    firstChartsReady: false,
    errors: []
  };
  window.dynostatReport = state;

  function toMs(offset) {
    return offset === null || offset === undefined ? offset : base + offset * 1000;
  }

  // Offsets (seconds after the first line) become epoch milliseconds, which plotly.js reads
  // as UTC dates on a date axis.
  function datesIn(figure) {
    figure.data.forEach(function (trace) {
      if (trace.x) {
        trace.x = trace.x.map(toMs);
      }
    });
    (figure.layout.shapes || []).forEach(function (shape) {
      if (shape.xref === "x") {
        shape.x0 = toMs(shape.x0);
        shape.x1 = toMs(shape.x1);
      }
    });
    (figure.layout.annotations || []).forEach(function (note) {
      if (note.xref === "x") {
        note.x = toMs(note.x);
      }
    });
    figure.layout.xaxis.range = (currentRange || fullRange).slice();
    figure.layout.xaxis.autorange = false;
    return figure;
  }

  var config = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
    toImageButtonOptions: { format: "png", scale: 2 }
  };

  function rangeFrom(event) {
    if (event["xaxis.autorange"]) {
      return fullRange;
    }
    if (event["xaxis.range[0]"] !== undefined && event["xaxis.range[1]"] !== undefined) {
      return [event["xaxis.range[0]"], event["xaxis.range[1]"]];
    }
    if (event["xaxis.range"]) {
      return event["xaxis.range"];
    }
    return null;
  }

  function followed(source) {
    return function (event) {
      if (syncing) {
        return;
      }
      var range = rangeFrom(event);
      if (range === null) {
        return;
      }
      currentRange = range === fullRange ? null : range.slice();
      syncing = true;
      // Charts on screen follow at once; the others when they next come into view, so a
      // zoom costs the same with 3 dynos or 50.
      var updates = drawn.map(function (element) {
        if (element === source && range !== fullRange) {
          return Promise.resolve();
        }
        if (!onScreen.has(element)) {
          element.setAttribute("data-stale", "yes");
          return Promise.resolve();
        }
        return follow(element);
      });
      Promise.all(updates).then(finish, finish);
      function finish() {
        syncing = false;
      }
    };
  }

  // Puts a chart on the shared time range.
  function follow(element) {
    element.removeAttribute("data-stale");
    var range = (currentRange || fullRange).slice();
    return Plotly.relayout(element, { "xaxis.range": range, "xaxis.autorange": false });
  }

  var onScreen = new Set();
  var visibility = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) {
        onScreen.add(entry.target);
        if (entry.target.getAttribute("data-stale") === "yes") {
          syncing = true;
          follow(entry.target).then(done, done);
        }
      } else {
        onScreen.delete(entry.target);
      }
    });
    function done() {
      syncing = false;
    }
  }, { rootMargin: "300px 0px" });

  function draw(element, figure, name) {
    var options = Object.assign({}, config, {
      toImageButtonOptions: { format: "png", scale: 2, filename: "dynostat-" + name }
    });
    return Plotly.newPlot(element, figure.data, figure.layout, options).then(function () {
      drawn.push(element);
      element.on("plotly_relayout", followed(element));
      return element;
    });
  }

  function drawOverview() {
    if (data.overview === null) {
      return Promise.resolve();
    }
    var element = document.getElementById("overview-chart");
    return draw(element, datesIn(data.overview), "overview").then(function () {
      visibility.observe(element);
      element.on("plotly_click", function (event) {
        var point = event.points && event.points[0];
        var anchor = point && data.anchors[point.y];
        if (anchor) {
          document.getElementById(anchor).scrollIntoView({ behavior: "smooth" });
        }
      });
      state.overviewReady = true;
      performance.mark("dynostat-overview");
    });
  }

  var pending = [];
  var busy = false;

  // One chart per animation frame, so scrolling stays smooth while charts appear.
  function drawNext() {
    if (busy || pending.length === 0) {
      return Promise.resolve();
    }
    busy = true;
    var element = pending.shift();
    var index = Number(element.getAttribute("data-index"));
    var entry = data.dynos[index];
    var figure = JSON.parse(document.getElementById("figure-" + index).textContent);
    element.innerHTML = "";
    return draw(element, datesIn(figure), entry.name).then(function () {
      visibility.observe(element);
      state.rendered += 1;
      busy = false;
      return new Promise(function (resolve) {
        window.requestAnimationFrame(function () {
          resolve(drawNext());
        });
      });
    }, function (error) {
      busy = false;
      state.errors.push(String(error));
      throw error;
    });
  }

  function want(element) {
    if (element.getAttribute("data-wanted") === "yes") {
      return;
    }
    element.setAttribute("data-wanted", "yes");
    pending.push(element);
  }

  var charts = Array.prototype.slice.call(document.querySelectorAll(".chart[data-index]"));
  var observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) {
        observer.unobserve(entry.target);
        want(entry.target);
      }
    });
    drawNext();
  }, { rootMargin: "600px 0px" });

  // Draws every chart now (to print the page, or to measure how long all of them take).
  state.renderAll = function () {
    charts.forEach(function (element) {
      observer.unobserve(element);
      want(element);
    });
    return new Promise(function (resolve) {
      function wait() {
        if (state.rendered >= state.total) {
          resolve(state.rendered);
        } else {
          drawNext();
          window.setTimeout(wait, 20);
        }
      }
      wait();
    });
  };
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (details) {
      details.open = true;
    });
    state.renderAll();
  });

  drawOverview().then(function () {
    charts.forEach(function (element) {
      observer.observe(element);
    });
    // The first charts are on screen at once: draw them before declaring the page ready.
    var visible = charts.filter(function (element) {
      return element.getBoundingClientRect().top < window.innerHeight + 600;
    });
    visible.forEach(want);
    return drawNext();
  }).then(function () {
    state.firstChartsReady = true;
    state.readyAt = performance.now();
    performance.mark("dynostat-ready");
  }, function (error) {
    state.errors.push(String(error));
  });
})();
