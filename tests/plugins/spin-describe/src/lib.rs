//! A test-only plugin whose `describe` spins forever, so the host must refuse
//! it at load with the same message as a `describe` that sleeps past its
//! deadline. Kept apart from the adversary, whose `describe` must work.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "handler",
});

struct SpinDescribe;

impl Guest for SpinDescribe {
    fn describe() -> PluginInfo {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn process(_items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        Err(TaskError::Permanent("never loaded".into()))
    }
}

export!(SpinDescribe);
