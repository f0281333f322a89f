"""mfproj: Metaflow's @project model as a standalone tool for Step Functions and Argo Workflows."""

__version__ = "0.1.0"
