//! Every event type's JSON Schema in the OpenAPI document: the envelope
//! (`Event`) with `type` fixed and `data` the type's own schema. Webhook
//! receivers and SSE clients validate against these; `/v1/events` names
//! them as its stream's items.

use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::ToSchema;

use super::call_item::CallDetail;
use crate::events::model::{
    AnsweredData, CallParties, HoldData, HungupData, LinkData, MatchedRecord, NoteData,
    RecordingData, RingingData, TransferData,
};
use crate::events::{Event, EventType};

/// The schema `data` has for each type.
fn data_schema(t: EventType) -> &'static str {
    match t {
        EventType::CallRinging => "RingingData",
        EventType::CallAnswered => "AnsweredData",
        EventType::CallHeld | EventType::CallResumed => "HoldData",
        EventType::CallTransferred => "TransferData",
        EventType::CallHungup => "HungupData",
        EventType::CallCompleted => "CallDetail",
        EventType::RecordingStored | EventType::RecordingFailed => "RecordingData",
        EventType::CallLinked | EventType::CallUnlinked => "LinkData",
        EventType::NoteAdded => "NoteData",
    }
}

fn add<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

pub fn add_event_schemas(doc: &mut Document) {
    let mut schemas = Vec::new();
    add::<Event>(&mut schemas);
    add::<CallParties>(&mut schemas);
    add::<MatchedRecord>(&mut schemas);
    add::<RingingData>(&mut schemas);
    add::<AnsweredData>(&mut schemas);
    add::<HoldData>(&mut schemas);
    add::<TransferData>(&mut schemas);
    add::<HungupData>(&mut schemas);
    add::<RecordingData>(&mut schemas);
    add::<LinkData>(&mut schemas);
    add::<NoteData>(&mut schemas);
    add::<CallDetail>(&mut schemas);
    let mut one_of = OneOfBuilder::new();
    for t in EventType::ALL {
        let fixed = ObjectBuilder::new()
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([t.as_str()])),
            )
            .required("type")
            .property("data", Ref::from_schema_name(data_schema(t)))
            .required("data");
        let schema = AllOfBuilder::new()
            .item(Ref::from_schema_name("Event"))
            .item(fixed)
            .description(Some(format!("`{t}`")))
            .build();
        schemas.push((t.schema_name().to_owned(), RefOr::T(Schema::AllOf(schema))));
        one_of = one_of.item(Ref::from_schema_name(t.schema_name()));
    }
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in schemas {
        components.schemas.entry(name).or_insert(schema);
    }
    components.schemas.insert(
        "AnyEvent".into(),
        RefOr::T(Schema::OneOf(
            one_of
                .description(Some(
                    "One event, as SSE `data`, a webhook body and a NATS message carry it",
                ))
                .build(),
        )),
    );
}
