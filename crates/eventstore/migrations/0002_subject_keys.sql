-- Crypto-shredding: one data key per person (data subject). Personal data in
-- events is encrypted with its subject's key; erasing a person deletes the
-- key, so the log stays intact (and its hash chains valid) while the data
-- becomes unreadable. See docs/adr/0003-crypto-shredding.md.
CREATE TABLE es_subject_keys (
    subject     uuid        PRIMARY KEY,
    key         bytea       NOT NULL CHECK (octet_length(key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Subjects whose key was shredded, so a late writer cannot recreate a key
-- for an erased person.
CREATE TABLE es_shredded_subjects (
    subject      uuid        PRIMARY KEY,
    shredded_at  timestamptz NOT NULL DEFAULT now()
);
