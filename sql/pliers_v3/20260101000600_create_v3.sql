-- Target of mappings/pliers_v2/*.toml: the pliers v3 forms schema (PostgreSQL only:
-- uuid, jsonb, timestamptz). Legacy integer ids become deterministic UUIDv5 ids
-- (organizations.legacy_id keeps the old one); the legacy FormSubmission GUIDs are kept.
-- Foreign keys are kept: run the mappings parents first (organizations, forms,
-- submissions); each child translates its parent's legacy id with lookup().

CREATE TABLE organizations (
    id         uuid    NOT NULL,
    legacy_id  integer NOT NULL,
    name       text    NOT NULL,
    slug       text    NOT NULL,
    settings   jsonb   NOT NULL DEFAULT '{}',
    CONSTRAINT organizations_pkey PRIMARY KEY (id),
    CONSTRAINT organizations_legacy_id_key UNIQUE (legacy_id)
);

CREATE TABLE forms (
    id               uuid  NOT NULL,
    organization_id  uuid  NOT NULL REFERENCES organizations (id),
    title            text  NOT NULL,
    description      text,
    definition       jsonb NOT NULL,
    CONSTRAINT forms_pkey PRIMARY KEY (id)
);

CREATE INDEX forms_organization_id_idx ON forms (organization_id);

CREATE TABLE submissions (
    id            uuid        NOT NULL,
    form_id       uuid        NOT NULL REFERENCES forms (id),
    status        text        NOT NULL
                  CONSTRAINT submissions_status_check
                  CHECK (status IN ('draft', 'submitted', 'approved', 'rejected')),
    submitted_at  timestamptz,
    data          jsonb       NOT NULL DEFAULT '{}',
    CONSTRAINT submissions_pkey PRIMARY KEY (id)
);

CREATE INDEX submissions_form_id_idx ON submissions (form_id);
