"""农贷通 Nongdaitong: GB18030 XML messages pushed to us, RSA-SHA256 signed over <Body>."""
