-- Target of mappings/openfootball.toml: openfootball/football.json, one document per
-- competition-season (openfootball/{season}/{competition}.json) with its matches.
CREATE TABLE competitions (
    season          VARCHAR(16)  NOT NULL,
    competition     VARCHAR(64)  NOT NULL,
    name            VARCHAR(255) NOT NULL,
    match_count     INTEGER      NOT NULL,
    PRIMARY KEY (season, competition)
);

CREATE TABLE matches (
    season          VARCHAR(16)  NOT NULL,
    competition     VARCHAR(64)  NOT NULL,
    match_no        INTEGER      NOT NULL,
    round           VARCHAR(64)  NULL,
    match_date      DATE         NOT NULL,
    kickoff         VARCHAR(5)   NULL,
    team1           VARCHAR(128) NOT NULL,
    team2           VARCHAR(128) NOT NULL,
    ft1             INTEGER      NULL,
    ft2             INTEGER      NULL,
    ht1             INTEGER      NULL,
    ht2             INTEGER      NULL,
    stage           VARCHAR(64)  NULL,
    status          VARCHAR(16)  NULL,
    score_json      TEXT         NULL,
    PRIMARY KEY (season, competition, match_no)
);

CREATE INDEX matches_match_date_idx ON matches (match_date);
