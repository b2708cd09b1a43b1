-- Call quality (issue 14): the worse direction's E-model MOS-CQ and
-- R-factor and its packet loss in percent, as real columns the API filters
-- on (min_mos, max_loss); NULL when no RTP flowed after the answer (and for
-- rows written before this step). quality holds both directions' figures as
-- JSON text (an object with "caller" and "callee": loss, duplicates, reorder,
-- late, jitter, gaps, loss runs, RTCP reports, R and MOS): read whole by the
-- API, never queried inside, so one TEXT column serves all three backends.
ALTER TABLE {calls} ADD COLUMN mos DOUBLE PRECISION;
ALTER TABLE {calls} ADD COLUMN r_factor DOUBLE PRECISION;
ALTER TABLE {calls} ADD COLUMN loss_pct DOUBLE PRECISION;
ALTER TABLE {calls} ADD COLUMN quality TEXT;
CREATE INDEX {p}calls_mos ON {calls} (mos, started_at);
