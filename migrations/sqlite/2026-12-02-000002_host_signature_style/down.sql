ALTER TABLE hosts DROP COLUMN signature_style;
