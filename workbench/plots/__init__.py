"""Live plots of a run: metric history (series.py), TensorBoard smoothing (smoothing.py), one
tick-aligned plot (scalar_plot.py), the loss plot's controls (loss.py), the tabs of plots
(live.py) and PNG/SVG/CSV export (export.py)."""
