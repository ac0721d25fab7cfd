"""Alert events leaving the service: the signed outbound webhook and its delivery worker."""
