"""The colours and marker shapes both maps use (``map.html`` and the printable map), in a
module of their own so that the printable map does not import folium for them."""

# Coverage share classes of the choropleth (after the plan) and their colours: light blues,
# so the orange and green demand points stay visible on top.
SHARE_BREAKS = (0.2, 0.4, 0.6, 0.8, 0.9)
SHARE_COLOURS = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd")
NO_DATA_COLOUR = "#d9d9d9"
# Demand status: 0 not covered, 1 covered before the plan, 2 newly covered by the plan.
STATUS_COLOURS = ("#e6550d", "#8c8c8c", "#1a9850")
# One colour and one marker shape per facility type, in the order of result.json.
TYPE_COLOURS = ("#c2185b", "#1565c0", "#6a1b9a", "#ef6c00", "#2e7d32", "#5d4037")
TYPE_SHAPES = ("square", "circle", "diamond", "triangle", "hexagon", "star")
