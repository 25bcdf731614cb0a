//! Dawid & Skene (1979): the true class of each sample and a confusion matrix per labeler, estimated together
//! by expectation–maximisation over the labelers' answers to a nominal field. Gold samples anchor it: their
//! class probabilities are set to their known answer after every E-step.
//!
//! The iteration follows the common formulation (as in `crowd-kit`'s `DawidSkene`, which a test compares it
//! with): start from majority-vote class shares; M-step: each labeler's confusion column for class c is the
//! class-c probability mass of the samples where they answered each value, floored at 1e-10 and normalised;
//! E-step in log₂ space; stop after `max_iter` rounds or when the evidence lower bound per answer improves by
//! less than `tol`.

const EPS: f64 = 1e-10;

/// Answers of one nominal field: `tasks[t]` = (labeler, class) pairs; classes are `0..classes`.
pub struct Answers<'a> {
    pub tasks: &'a [Vec<(usize, usize)>],
    pub labelers: usize,
    pub classes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Per task, the probability of each class.
    pub probas: Vec<Vec<f64>>,
    /// The class of each task: the most probable one (the lowest index on a tie).
    pub classes: Vec<usize>,
    /// Class priors.
    pub priors: Vec<f64>,
    /// `errors[labeler][answered][true]`: the probability that the labeler answers `answered` when the true
    /// class is `true` (columns sum to 1 over the values the labeler ever gave).
    pub errors: Vec<Vec<Vec<f64>>>,
    /// Rounds run.
    pub iterations: usize,
}

/// Runs the estimate; `gold[t]` is the known class of task t, if any.
pub fn estimate(a: &Answers<'_>, gold: &[Option<usize>], max_iter: usize, tol: f64) -> Estimate {
    let k = a.classes;
    // Initial class shares: majority vote.
    let mut probas: Vec<Vec<f64>> = a
        .tasks
        .iter()
        .map(|answers| {
            let mut row = vec![0.0; k];
            for &(_, c) in answers {
                row[c] += 1.0;
            }
            let n: f64 = row.iter().sum();
            if n > 0.0 {
                row.iter_mut().for_each(|x| *x /= n);
            }
            row
        })
        .collect();
    anchor(&mut probas, gold);
    let mut priors = mean(&probas, k);
    let mut errors = m_step(a, &probas);
    let answers: usize = a.tasks.iter().map(Vec::len).sum();
    let mut loss = f64::NEG_INFINITY;
    let mut iterations = 0;
    for _ in 0..max_iter {
        iterations += 1;
        probas = e_step(a, &priors, &errors);
        anchor(&mut probas, gold);
        priors = mean(&probas, k);
        errors = m_step(a, &probas);
        let new_loss = lower_bound(a, &mut probas, &priors, &errors) / answers.max(1) as f64;
        if new_loss - loss < tol {
            break;
        }
        loss = new_loss;
    }
    let classes = probas
        .iter()
        .map(|row| {
            let mut best = 0;
            for (c, &p) in row.iter().enumerate() {
                if p > row[best] {
                    best = c;
                }
            }
            best
        })
        .collect();
    Estimate { probas, classes, priors, errors, iterations }
}

fn anchor(probas: &mut [Vec<f64>], gold: &[Option<usize>]) {
    for (row, g) in probas.iter_mut().zip(gold) {
        if let Some(c) = *g {
            row.iter_mut().for_each(|x| *x = 0.0);
            row[c] = 1.0;
        }
    }
}

fn mean(probas: &[Vec<f64>], k: usize) -> Vec<f64> {
    let mut m = vec![0.0; k];
    for row in probas {
        for (c, x) in row.iter().enumerate() {
            m[c] += x;
        }
    }
    let n = probas.len().max(1) as f64;
    m.iter_mut().for_each(|x| *x /= n);
    m
}

/// Per labeler and answered value, the summed class probabilities of the tasks they gave it to; values a
/// labeler never gave stay absent (NaN) and take no part in the normalisation.
fn m_step(a: &Answers<'_>, probas: &[Vec<f64>]) -> Vec<Vec<Vec<f64>>> {
    let k = a.classes;
    let mut e = vec![vec![vec![f64::NAN; k]; k]; a.labelers];
    for (t, answers) in a.tasks.iter().enumerate() {
        for &(w, l) in answers {
            let row = &mut e[w][l];
            if row[0].is_nan() {
                row.iter_mut().for_each(|x| *x = 0.0);
            }
            for c in 0..k {
                row[c] += probas[t][c];
            }
        }
    }
    for worker in &mut e {
        for row in worker.iter_mut().filter(|r| !r[0].is_nan()) {
            row.iter_mut().for_each(|x| *x = x.max(EPS));
        }
        for c in 0..k {
            let total: f64 = worker.iter().filter(|r| !r[0].is_nan()).map(|r| r[c]).sum();
            for row in worker.iter_mut().filter(|r| !r[0].is_nan()) {
                row[c] /= total;
            }
        }
    }
    e
}

fn e_step(a: &Answers<'_>, priors: &[f64], errors: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    let k = a.classes;
    a.tasks
        .iter()
        .map(|answers| {
            let mut ll: Vec<f64> = priors.iter().map(|p| p.max(EPS).log2()).collect();
            for &(w, l) in answers {
                for c in 0..k {
                    ll[c] += errors[w][l][c].log2();
                }
            }
            let max = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut row: Vec<f64> = ll.iter().map(|x| (x - max).exp2()).collect();
            let s: f64 = row.iter().sum();
            row.iter_mut().for_each(|x| *x /= s);
            row
        })
        .collect()
}

/// The evidence lower bound; floors the class probabilities at 1e-10 as it takes their entropy.
fn lower_bound(a: &Answers<'_>, probas: &mut [Vec<f64>], priors: &[f64], errors: &[Vec<Vec<f64>>]) -> f64 {
    let k = a.classes;
    let mut joint = 0.0;
    for (t, answers) in a.tasks.iter().enumerate() {
        for &(w, l) in answers {
            for c in 0..k {
                joint += probas[t][c] * (errors[w][l][c].ln() + priors[c].max(EPS).ln());
            }
        }
    }
    let mut entropy = 0.0;
    for row in probas.iter_mut() {
        for x in row.iter_mut() {
            *x = x.max(EPS);
            entropy -= x.ln() * *x;
        }
    }
    joint + entropy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_reliable_labelers_outweigh_three_random_ones() {
        // Labelers 0 and 1 are right on the 40 warm-up tasks; 2, 3 and 4 answer by a fixed pseudo-random
        // rule. On the last task 0 and 1 say class 1 and the other three class 0: a vote says 0, the
        // estimate (which has learnt that 2–4 carry no information) says 1.
        let mut x = 12345u32;
        let mut coin = || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((x >> 16) & 1) as usize
        };
        let truth: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let mut tasks: Vec<Vec<(usize, usize)>> =
            truth.iter().map(|&c| vec![(0, c), (1, c), (2, coin()), (3, coin()), (4, coin())]).collect();
        tasks.push(vec![(0, 1), (1, 1), (2, 0), (3, 0), (4, 0)]);
        let a = Answers { tasks: &tasks, labelers: 5, classes: 2 };
        let est = estimate(&a, &vec![None; tasks.len()], 100, 1e-5);
        assert_eq!(&est.classes[..40], &truth[..]);
        assert_eq!(est.classes[40], 1, "{:?}", est.probas[40]);
        for row in &est.probas {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn gold_anchors_its_task() {
        let tasks = vec![vec![(0, 0), (1, 0)], vec![(0, 1), (1, 1)]];
        let a = Answers { tasks: &tasks, labelers: 2, classes: 2 };
        let est = estimate(&a, &[Some(1), None], 100, 1e-5);
        assert_eq!(est.classes[0], 1);
    }
}

/// Gathers a queue's answers to its nominal fields (single choice, boolean), sample by sample, and runs
/// [`estimate`] per field. Classes are the values given (or known for gold) at least once.
pub struct DsBuilder {
    /// Per nominal field: its index in the schema, its name, whether it is boolean.
    fields: Vec<(usize, String, bool)>,
    tasks: std::collections::HashMap<uuid::Uuid, usize>,
    task_ids: Vec<uuid::Uuid>,
    labelers: std::collections::HashMap<String, usize>,
    /// Per field: the distinct values (as JSON) and per task its answers and gold class.
    classes: Vec<Vec<serde_json::Value>>,
    answers: Vec<Vec<Vec<(usize, usize)>>>,
    gold: Vec<Vec<Option<usize>>>,
}

/// The Dawid–Skene class of each sample, per nominal field (by index in the schema).
#[derive(Debug, Default)]
pub struct DsClasses(
    std::collections::HashMap<usize, std::collections::HashMap<uuid::Uuid, serde_json::Value>>,
);

impl DsClasses {
    pub fn value(&self, field: usize, sample: uuid::Uuid) -> Option<serde_json::Value> {
        self.0.get(&field)?.get(&sample).cloned()
    }
}

/// EM rounds and tolerance of the final labels' Dawid–Skene (crowd-kit's defaults).
pub const DS_MAX_ITER: usize = 100;
pub const DS_TOL: f64 = 1e-5;

impl DsBuilder {
    pub fn new(schema: &anvil_types::LabelSchema) -> Self {
        let fields: Vec<(usize, String, bool)> = schema
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| super::final_label::nominal(&f.kind))
            .map(|(i, f)| (i, f.name.clone(), matches!(f.kind, anvil_types::FieldKind::Boolean)))
            .collect();
        let n = fields.len();
        DsBuilder {
            fields,
            tasks: Default::default(),
            task_ids: Vec::new(),
            labelers: Default::default(),
            classes: vec![Vec::new(); n],
            answers: vec![Vec::new(); n],
            gold: vec![Vec::new(); n],
        }
    }

    fn class(&mut self, fi: usize, v: &serde_json::Value, boolean: bool) -> Option<usize> {
        let ok = if boolean { v.is_boolean() } else { v.is_string() };
        if !ok {
            return None;
        }
        match self.classes[fi].iter().position(|c| c == v) {
            Some(c) => Some(c),
            None => {
                self.classes[fi].push(v.clone());
                Some(self.classes[fi].len() - 1)
            }
        }
    }

    /// One label of `sample` by `labeler`; `gold` is the sample's known answer when it is a gold sample.
    pub fn add(
        &mut self,
        sample: uuid::Uuid,
        labeler: &str,
        payload: &serde_json::Value,
        gold: Option<&serde_json::Value>,
    ) {
        if self.fields.is_empty() {
            return;
        }
        let t = match self.tasks.get(&sample) {
            Some(&t) => t,
            None => {
                let t = self.task_ids.len();
                self.tasks.insert(sample, t);
                self.task_ids.push(sample);
                for fi in 0..self.fields.len() {
                    self.answers[fi].push(Vec::new());
                    self.gold[fi].push(None);
                }
                t
            }
        };
        let w = match self.labelers.get(labeler) {
            Some(&w) => w,
            None => {
                let w = self.labelers.len();
                self.labelers.insert(labeler.to_string(), w);
                w
            }
        };
        for fi in 0..self.fields.len() {
            let (name, boolean) = (self.fields[fi].1.clone(), self.fields[fi].2);
            if let Some(c) = payload.get(&name).and_then(|v| self.class(fi, v, boolean)) {
                self.answers[fi][t].push((w, c));
            }
            if let Some(c) = gold.and_then(|g| g.get(&name)).and_then(|v| self.class(fi, v, boolean)) {
                self.gold[fi][t] = Some(c);
            }
        }
    }

    pub fn estimate(self) -> DsClasses {
        let mut out = DsClasses::default();
        for (fi, (schema_index, _, _)) in self.fields.iter().enumerate() {
            let k = self.classes[fi].len();
            if k < 2 {
                continue;
            }
            let a = Answers { tasks: &self.answers[fi], labelers: self.labelers.len(), classes: k };
            let est = estimate(&a, &self.gold[fi], DS_MAX_ITER, DS_TOL);
            let map = est
                .classes
                .iter()
                .enumerate()
                .filter(|(t, _)| !self.answers[fi][*t].is_empty())
                .map(|(t, &c)| (self.task_ids[t], self.classes[fi][c].clone()))
                .collect();
            out.0.insert(*schema_index, map);
        }
        out
    }
}
