// Word lists for generated run names ("adjective-noun-123"), in the style of MLflow's.
const ADJECTIVES = [
  'able', 'bold', 'brave', 'bright', 'calm', 'capable', 'clean', 'clever', 'crisp', 'daring', 'eager',
  'fearless', 'gentle', 'glamorous', 'honest', 'intelligent', 'judicious', 'kindly', 'lively',
  'loud', 'merciful', 'nimble', 'polite', 'quick', 'rebellious', 'resilient', 'rumbling', 'salty',
  'secretive', 'sedate', 'skillful', 'smiling', 'spiffy', 'stylish', 'suave', 'thoughtful',
  'traveling', 'unique', 'upbeat', 'valuable', 'victorious', 'wise', 'zealous',
];
const NOUNS = [
  'ant', 'asp', 'bass', 'bat', 'bear', 'bird', 'boar', 'carp', 'cat', 'colt', 'crab', 'crow', 'cub',
  'deer', 'doe', 'dog', 'dove', 'eel', 'elk', 'finch', 'fish', 'foal', 'fowl', 'fox', 'frog', 'gnat',
  'goat', 'hare', 'hawk', 'hen', 'hog', 'horse', 'jay', 'koi', 'lamb', 'lark', 'mole', 'moth',
  'mouse', 'newt', 'owl', 'ox', 'panda', 'pig', 'ram', 'seal', 'shark', 'shrew', 'skunk', 'slug',
  'snail', 'sow', 'squid', 'stag', 'swan', 'toad', 'trout', 'whale', 'wolf', 'worm', 'yak', 'zebra',
];

/** A random run name; `random` returns numbers in [0, 1) and is injected for determinism. */
export function generateRunName(random: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${Math.floor(random() * 1000)}`;
}
