"""Frame sources (images, videos, cameras) and sinks (overlays, videos, timelines, figures,
atomic output files), and the stop signals that must not leave those half done: the edges of
every path, depending on nothing above them."""
