"""天府融通 Tianfu Rongtong: a credit-event feed the gateway polls."""
