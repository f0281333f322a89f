"""AWS Step Functions (and EventBridge for schedules) through boto3.

settings.py: the [step_functions] table. record.py: the deployment record in tags, and the reference's
record in the definition. schedule.py: cron to EventBridge. client.py: clients, errors, identity.
lock.py: the write lock. deploying.py: read, plan, apply, delete. runs.py: start, get, list runs.
backend.py: the class that puts them together. Only settings.py is imported without boto3.
"""
