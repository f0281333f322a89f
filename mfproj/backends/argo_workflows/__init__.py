"""Argo Workflows: WorkflowTemplates, CronWorkflows and Workflows through the Kubernetes API.

settings.py: the [argo_workflows] table. labels.py: label-safe values and run-tag labels.
record.py: the deployment record in the reference's annotations. template.py: reading templates.
client.py: the Kubernetes client, errors and object calls. deploying.py: read, plan, apply, delete.
runs.py: start, get, list runs. backend.py: the class. Only settings.py and labels.py are imported
without the kubernetes client.
"""
