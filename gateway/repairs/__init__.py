"""Online credit repair (信用修复): an enterprise applies for a published penalty, the
department that decided it reviews, an approval publishes the `credit_repair` record."""
