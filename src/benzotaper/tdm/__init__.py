"""Serum-level monitoring: read levels, interpret them, individualise the model, forecast, guide the taper."""
