"""Running stockflow: CLI, configuration, metrics, dashboards, alert rules."""
