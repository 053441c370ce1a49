"""创富天府 Chuangfu Tianfu: JWS (ES256) signed JSON envelopes, signed acknowledgements back."""
