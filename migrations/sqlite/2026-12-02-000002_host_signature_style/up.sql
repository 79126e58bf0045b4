-- Which HTTP signature a host accepted last: 'rfc9421' or 'cavage'
-- (NULL: not known yet, try RFC 9421 first).
ALTER TABLE hosts ADD COLUMN signature_style TEXT;
