"""`ontwatch agent`: the ICMP sweep inside a POP, reporting to the central service.

Contract with the centre: docs/agents.md. The agent keeps no state of its own beyond its
store-and-forward queue (agent/queue.py): the centre decides status and alerts.
"""
