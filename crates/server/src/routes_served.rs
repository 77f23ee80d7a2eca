//! The route table (`baton_access::routes`) against what this server
//! serves: every gRPC method and HTTP route has exactly one row, and
//! authorization, metrics and traces resolve each row to it.

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use baton_access::routes::{Bridge, Kind, Need, ROUTES, Role, Route, bridges};
    use prost::Message as _;

    /// Every gRPC method a node serves, with its kind: the services of the
    /// descriptor sets it serves (reflection answers from the same sets),
    /// and Envoy's ext_authz, which envoy-types serves without one.
    fn served() -> Vec<(String, Kind)> {
        let sets = [
            baton_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut served = Vec::new();
        for set in sets {
            for file in prost_types::FileDescriptorSet::decode(set).unwrap().file {
                for service in &file.service {
                    for method in &service.method {
                        let kind = match (method.client_streaming(), method.server_streaming()) {
                            (false, false) => Kind::Unary,
                            (false, true) => Kind::ServerStream,
                            (true, true) => Kind::BidiStream,
                            (true, false) => panic!("{}: client streaming", method.name()),
                        };
                        let path =
                            format!("/{}.{}/{}", file.package(), service.name(), method.name());
                        served.push((path, kind));
                    }
                }
            }
        }
        let ext_authz =
            envoy_types::pb::envoy::service::auth::v3::authorization_server::SERVICE_NAME;
        served.push((format!("/{ext_authz}/Check"), Kind::Unary));
        served
    }

    /// Adding a route is one row: every method served has exactly one, of
    /// its kind, and every gRPC row is served; authorization, metrics and
    /// traces resolve each row to it.
    #[test]
    fn every_route_served_has_one_row_that_everything_resolves() {
        let served = served();
        assert!(served.len() >= 17, "{served:?}");
        for (path, kind) in &served {
            let rows: Vec<&Route> = ROUTES.iter().filter(|r| r.path == path).collect();
            assert_eq!(rows.len(), 1, "{path}: {} rows", rows.len());
            let row = rows[0];
            assert_eq!(row.kind, *kind, "{path}");
            assert_eq!(path, &format!("/{}/{}", row.service, row.method));
            // Metrics label it, and its span is named, by the row.
            assert_eq!(
                crate::metrics::method(path),
                (row.service, row.method, kind.grpc_type()),
                "{path}"
            );
            assert_eq!(crate::auth::required(path), row.need, "{path}");
        }
        for row in ROUTES {
            match row.kind {
                Kind::Http(_) => {
                    assert!(row.path.starts_with('/') && row.service == "http");
                    assert_eq!(crate::auth::required(row.path), row.need);
                    assert_eq!(crate::metrics::method(row.path).0, "unknown");
                }
                _ => assert!(
                    served.iter().any(|(path, _)| path == row.path),
                    "{}: a row for a method no service serves",
                    row.path
                ),
            }
        }
        // Each HTTP bridge is one route, and every bridge has one.
        let bridges: Vec<Bridge> = bridges().map(|(_, b)| b).collect();
        for bridge in [
            Bridge::ForwardAuth,
            Bridge::Introspect,
            Bridge::Revoke,
            Bridge::Health,
        ] {
            assert_eq!(bridges.iter().filter(|b| **b == bridge).count(), 1);
        }
        // What is not served needs admin and has no label of its own.
        for path in [
            "/baton.v1.LedgerService/Rewrite",
            "/grpc.health.v1.HealthX/Check",
            "/",
        ] {
            assert_eq!(crate::auth::required(path), Need::Role(Role::Admin));
            assert_eq!(
                crate::metrics::method(path),
                ("unknown", "unknown", "unary")
            );
        }
    }
}
