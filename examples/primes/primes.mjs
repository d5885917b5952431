#!/usr/bin/env node
// Counts the primes in one slice of the numbers: slice N is [N*SIZE, (N+1)*SIZE).
// A picluster job runs it once per item, e.g. 10 000 slices spread over the nodes:
//   picluster job run primes --range 0..9999 --arg slice={item}
// It prints `slice N: C primes in [A, B)` and exits 0; a bad argument exits 2.
const SIZE = Number(process.env.PRIMES_SLICE_SIZE ?? 10_000);

const arg = process.argv[2];
if (arg === undefined || !/^\d{1,9}$/.test(arg)) {
  console.error(`usage: primes.mjs SLICE (a whole number), got ${JSON.stringify(arg)}`);
  process.exit(2);
}
const slice = Number(arg);
const from = slice * SIZE;
const to = from + SIZE;

function isPrime(n) {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

let count = 0;
for (let n = from; n < to; n++) if (isPrime(n)) count++;
console.log(`slice ${slice}: ${count} primes in [${from}, ${to})`);
