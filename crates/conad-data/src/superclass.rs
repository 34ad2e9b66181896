//! CIFAR-100's 20 superclasses: the official fine→coarse mapping and the CSI repository's list
//! (docs/reference.md §4.1 table, §6.20).
//!
//! The CSI repository (alinlab/CSI, acknowledged in its issue #21) hard-codes a superclass list
//! that is shifted by one for several fine ids in 25–39. It is still a partition of the 100 fine
//! classes into 20 × 5, but not the official one. Use [`SuperclassMapping::Official`] by default and
//! [`SuperclassMapping::Csi`] only to reproduce CSI's 89.6 (docs/reference.md §6.20).

use serde::{Deserialize, Serialize};

/// Official CIFAR-100 fine→coarse array (index = fine label, alphabetical), docs/reference.md §4.1.
pub const FINE_TO_COARSE: [u8; 100] = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15,
    3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4,
    2, 0, 17, 4, 18, 17, 10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
];

/// The CSI repository's superclass list: fine ids of each of the 20 superclasses (docs/reference.md §4.1,
/// last column).
pub const CSI_SUPERCLASSES: [[u8; 5]; 20] = [
    [4, 31, 55, 72, 95],
    [1, 33, 67, 73, 91],
    [54, 62, 70, 82, 92],
    [9, 10, 16, 29, 61],
    [0, 51, 53, 57, 83],
    [22, 25, 40, 86, 87],
    [5, 20, 26, 84, 94],
    [6, 7, 14, 18, 24],
    [3, 42, 43, 88, 97],
    [12, 17, 38, 68, 76],
    [23, 34, 49, 60, 71],
    [15, 19, 21, 32, 39],
    [35, 63, 64, 66, 75],
    [27, 45, 77, 79, 99],
    [2, 11, 36, 46, 98],
    [28, 30, 44, 78, 93],
    [37, 50, 65, 74, 80],
    [47, 52, 56, 59, 96],
    [8, 13, 48, 58, 90],
    [41, 69, 81, 85, 89],
];

/// The official fine class names (alphabetical; = `fine_label_names.txt`).
pub const FINE_NAMES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// The official superclass names (= `coarse_label_names.txt`).
pub const COARSE_NAMES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// Which fine→coarse partition to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuperclassMapping {
    /// The official CIFAR-100 mapping (default).
    #[default]
    Official,
    /// The CSI repository's list (reproduces CSI's numbers).
    Csi,
}

impl SuperclassMapping {
    /// The fine→coarse array of this mapping (index = fine label).
    pub fn fine_to_coarse(self) -> [u8; 100] {
        match self {
            SuperclassMapping::Official => FINE_TO_COARSE,
            SuperclassMapping::Csi => {
                let mut t = [0u8; 100];
                for (coarse, members) in CSI_SUPERCLASSES.iter().enumerate() {
                    for &f in members {
                        t[f as usize] = coarse as u8;
                    }
                }
                t
            }
        }
    }

    /// The 5 fine ids of each superclass, ascending.
    pub fn members(self) -> [[u8; 5]; 20] {
        let t = self.fine_to_coarse();
        let mut out = [[0u8; 5]; 20];
        let mut fill = [0usize; 20];
        for (fine, &c) in t.iter().enumerate() {
            let c = c as usize;
            if fill[c] < 5 {
                out[c][fill[c]] = fine as u8;
            }
            fill[c] += 1;
        }
        out
    }

    /// A short description for logs.
    pub fn describe(self) -> &'static str {
        match self {
            SuperclassMapping::Official => "official",
            SuperclassMapping::Csi => "CSI-repository (alinlab/CSI issue #21)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/reference.md §4.1 table, "fine ids (official)" column.
    const OFFICIAL_TABLE: [[u8; 5]; 20] = [
        [4, 30, 55, 72, 95],
        [1, 32, 67, 73, 91],
        [54, 62, 70, 82, 92],
        [9, 10, 16, 28, 61],
        [0, 51, 53, 57, 83],
        [22, 39, 40, 86, 87],
        [5, 20, 25, 84, 94],
        [6, 7, 14, 18, 24],
        [3, 42, 43, 88, 97],
        [12, 17, 37, 68, 76],
        [23, 33, 49, 60, 71],
        [15, 19, 21, 31, 38],
        [34, 63, 64, 66, 75],
        [26, 45, 77, 79, 99],
        [2, 11, 35, 46, 98],
        [27, 29, 44, 78, 93],
        [36, 50, 65, 74, 80],
        [47, 52, 56, 59, 96],
        [8, 13, 48, 58, 90],
        [41, 69, 81, 85, 89],
    ];

    #[test]
    fn official_array_matches_the_table() {
        assert_eq!(SuperclassMapping::Official.members(), OFFICIAL_TABLE);
    }

    #[test]
    fn csi_list_is_a_partition_and_roundtrips() {
        let t = SuperclassMapping::Csi.fine_to_coarse();
        let mut counts = [0; 20];
        for &c in &t {
            counts[c as usize] += 1;
        }
        assert_eq!(counts, [5; 20]);
        assert_eq!(SuperclassMapping::Csi.members(), CSI_SUPERCLASSES);
        // The two mappings differ exactly on the ids docs/reference.md §4.1 marks (25–39 range).
        let off = FINE_TO_COARSE;
        let differ: Vec<usize> = (0..100).filter(|&f| t[f] != off[f]).collect();
        assert_eq!(
            differ,
            vec![25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39],
            "fine ids whose superclass differs"
        );
    }

    #[test]
    fn names_agree_with_the_table() {
        // Spot checks from the CIFAR-100 fine-name table (docs/reference.md §4.1).
        let m = SuperclassMapping::Official.members();
        let names = |c: usize| {
            m[c].iter()
                .map(|&f| FINE_NAMES[f as usize])
                .collect::<Vec<_>>()
        };
        assert_eq!(names(0), ["beaver", "dolphin", "otter", "seal", "whale"]);
        assert_eq!(
            names(5),
            ["clock", "keyboard", "lamp", "telephone", "television"]
        );
        assert_eq!(
            names(11),
            ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"]
        );
        assert_eq!(
            names(15),
            ["crocodile", "dinosaur", "lizard", "snake", "turtle"]
        );
        assert_eq!(
            names(19),
            ["lawn_mower", "rocket", "streetcar", "tank", "tractor"]
        );
    }
}
