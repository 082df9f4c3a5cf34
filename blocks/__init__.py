"""Prefect block types of the outage alerting toolkit (channels and monitors for the Prefect UI).

Imported by Prefect through the ``prefect.collections`` entry point, so a Prefect server in the
same environment knows these types (automations need that to call ``notify``).
"""

from blocks.channels import AppriseChannel, EmailChannel, SmtpSecurity
from blocks.monitor import ServiceMonitor

BLOCK_TYPES = (AppriseChannel, EmailChannel, ServiceMonitor)
CHANNEL_TYPES = (AppriseChannel, EmailChannel)

__all__ = ["AppriseChannel", "EmailChannel", "ServiceMonitor", "SmtpSecurity", "BLOCK_TYPES", "CHANNEL_TYPES"]
