//! The metric families beside the tracker's own: phone index, capture
//! interfaces, HEP and queues.

use super::*;

pub(super) fn encode_phone_index(
    enc: &mut DescriptorEncoder<'_>,
    types: &[IndexGauge],
) -> Result<(), fmt::Error> {
    {
        let mut f = Family::new_gauge(
            enc,
            "phone_index_values",
            "CRM phone values in the phone index, by record type and status (e164, extension, invalid).",
            None,
        )?;
        for t in types {
            for (status, n) in [
                ("e164", t.e164),
                ("extension", t.extensions),
                ("invalid", t.invalid),
            ] {
                f.gauge(&[("type", &t.record_type), ("status", status)], n)?;
            }
        }
    }
    let mut e = enc.encode_descriptor(
        "phone_index_build",
        "How long the last full build of each record type's phone index took.",
        Some(&Unit::Seconds),
        MetricType::Gauge,
    )?;
    for t in types {
        ConstGauge::new(t.build_secs)
            .encode(e.encode_family(&[("type", t.record_type.as_str())])?)?;
    }
    Ok(())
}

pub(super) fn encode_interfaces(
    enc: &mut DescriptorEncoder<'_>,
    interfaces: &[InterfaceCounters],
) -> Result<(), fmt::Error> {
    {
        let mut f = Family::new_counter(
            enc,
            "capture_packets",
            "Packets captured, by interface.",
            None,
        )?;
        for i in interfaces {
            f.counter(&[("interface", &i.name)], i.received)?;
        }
    }

    {
        let mut f = Family::new_counter(
            enc,
            "capture",
            "Bytes captured, by interface.",
            Some(&Unit::Bytes),
        )?;
        for i in interfaces {
            f.counter(&[("interface", &i.name)], i.bytes)?;
        }
    }

    {
        let mut f = Family::new_counter(
        enc,
        "kernel_drops",
        "Packets lost before pbxbridge saw them: kind=kernel (capture buffer full) or interface (NIC/driver).",
        None,
    )?;
        for i in interfaces {
            f.counter(
                &[("interface", &i.name), ("kind", "kernel")],
                i.kernel_dropped,
            )?;
            f.counter(
                &[("interface", &i.name), ("kind", "interface")],
                i.if_dropped,
            )?;
        }
    }

    let mut f = Family::new_counter(
        enc,
        "capture_queue_full",
        "Captured packets discarded because the tracker's input queue was full.",
        None,
    )?;
    for i in interfaces {
        f.counter(&[("interface", &i.name)], i.queue_full)?;
    }
    Ok(())
}

pub(super) fn encode_hep(
    enc: &mut DescriptorEncoder<'_>,
    hep: &HepCounters,
) -> Result<(), fmt::Error> {
    counters_by(
        enc,
        "hep_messages",
        "HEP messages received, by transport.",
        "transport",
        &[("udp", hep.datagrams), ("tcp", hep.tcp_messages)],
    )?;
    counter(
        enc,
        "hep_tcp_connections",
        "HEP TCP connections accepted.",
        None,
        hep.tcp_connections,
    )?;
    counter(
        enc,
        "hep_tcp_refused",
        "HEP TCP connections refused at the connection cap.",
        None,
        hep.tcp_refused,
    )?;
    counter(
        enc,
        "hep_bad_frames",
        "HEP frames that could not be decoded.",
        None,
        hep.bad_frames,
    )
}

pub(super) fn encode_queues(
    enc: &mut DescriptorEncoder<'_>,
    queues: &[QueueGauge],
) -> Result<(), fmt::Error> {
    {
        let mut f = Family::new_gauge(
            enc,
            "queue_depth",
            "Items waiting in a bounded queue.",
            None,
        )?;
        for q in queues {
            f.gauge(&[("queue", q.name)], q.depth)?;
        }
    }

    {
        let mut f = Family::new_gauge(enc, "queue_capacity", "Capacity of a bounded queue.", None)?;
        for q in queues {
            f.gauge(&[("queue", q.name)], q.capacity)?;
        }
    }

    let mut f = Family::new_counter(
        enc,
        "queue_dropped",
        "Items refused because a queue was full.",
        None,
    )?;
    for q in queues {
        f.counter(&[("queue", q.name)], q.dropped)?;
    }
    Ok(())
}
