//! The testkit's webinjects (Japanese and English fake screens) are analysed as generated.

use dropwatch_inject::{analyze, parse_zeus, EndpointClass, Mode};
use dropwatch_masks::InstitutionIndex;
use dropwatch_testkit::{generate, GenerateOptions};

#[test]
fn generated_injects_are_analysed_as_generated() {
    for seed in 0..25 {
        let g = generate(&GenerateOptions {
            seed,
            drop_base: "http://127.0.0.1:18080".into(),
        });
        let index = InstitutionIndex::new(g.registry.institutions.clone());
        let mut asked = Vec::new();
        let mut drops = Vec::new();
        let mut scripts = Vec::new();
        let mut unmatched = Vec::new();
        for (name, text) in &g.webinjects {
            let parsed = parse_zeus(text.as_bytes(), Mode::Strict)
                .unwrap_or_else(|d| panic!("seed {seed} {name}: {d}"));
            let a = analyze(&parsed.injects, &index);
            for (entry, target) in a.targets.iter().enumerate() {
                match &target.institution_id {
                    Some(id) => {
                        let mut kinds: Vec<_> = a
                            .fields
                            .iter()
                            .filter(|f| f.entry == entry)
                            .filter_map(|f| f.kind.secret_kind())
                            .collect();
                        kinds.sort();
                        asked.push((id.clone(), kinds));
                    }
                    None => unmatched.push(target.url_mask.clone()),
                }
            }
            drops.extend(a.endpoints_of(EndpointClass::Drop));
            scripts.extend(a.endpoints_of(EndpointClass::ScriptHost));
            assert!(a.endpoints_of(EndpointClass::AtsPanel).is_empty());
            assert_eq!(
                a.macros.len(),
                a.targets.iter().filter(|t| !t.grab).count(),
                "every inject posts %BOTID%"
            );
        }
        drops.sort();
        scripts.sort();
        unmatched.dedup();
        assert_eq!(asked, g.truth.asked, "seed {seed}");
        assert_eq!(drops, g.truth.drop_urls, "seed {seed}");
        assert_eq!(scripts, g.truth.script_urls, "seed {seed}");
        assert_eq!(unmatched, g.truth.unmatched_targets, "seed {seed}");
    }
}
