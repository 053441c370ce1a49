"""科创通 Kechuangtong: HMAC-signed JSON webhooks in, signed risk-alert callbacks out."""
