"""One router per resource: sessions, offers, approvals, report, the shopper's cart, health."""
