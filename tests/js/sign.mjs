// Signed-fetch headers made the way the Explorer makes them, with the real @dcl/crypto library,
// for the Python verifier's tests (tests/unit/test_signed_fetch_dcl_crypto.py).
//
// stdin: one job object, or an array of jobs (one node start for many chains).
// stdout: the result for the job, or an array of results in job order.
// With --lines: each stdin line is an array of jobs, answered by one stdout line, so a test
// session can keep one node process for several batches.
//
// Sign job (default op):
//   {method, path, timestamp, metadata (string), ownerKey?, ephemeral: bool,
//    expirationISO?, ephemeralMinutes?}
//   -> the headers object: x-identity-auth-chain-N, x-identity-timestamp, x-identity-metadata.
//   ephemeral: owner signs an ephemeral key (initializeAuthChain), the ephemeral key signs the
//   payload (signPayload). Otherwise the owner signs the payload itself (createSimpleAuthChain).
// Validate job: {op: "validate", payload, chain, nowMs}
//   -> {ok, message} from Authenticator.validateSignature with no provider, as the reference
//   middleware calls it, so the Python reasons can be compared with the library's.
import { createInterface } from 'node:readline'
import { Authenticator, getEphemeralSignatureType } from '@dcl/crypto'
import { Wallet, hexlify, randomBytes } from 'ethers'

// A random key without Wallet.createRandom()'s mnemonic derivation (PBKDF2, ~0.2 s each).
function randomWallet() {
  return new Wallet(hexlify(randomBytes(32)))
}

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

async function ownerIdentity(job, owner, ephemeralIdentity) {
  const signer = (message) => owner.signMessage(message)
  if (!job.expirationISO) {
    return Authenticator.initializeAuthChain(
      owner.address,
      ephemeralIdentity,
      job.ephemeralMinutes ?? 60,
      signer
    )
  }
  // initializeAuthChain only takes "minutes from now"; build the same chain for a fixed date.
  const expiration = new Date(job.expirationISO)
  const message = Authenticator.getEphemeralMessage(ephemeralIdentity.address, expiration)
  const signature = await signer(message)
  return {
    ephemeralIdentity,
    expiration,
    authChain: [
      { type: 'SIGNER', payload: owner.address, signature: '' },
      { type: getEphemeralSignatureType(signature), payload: message, signature }
    ]
  }
}

async function sign(job) {
  const owner = job.ownerKey ? new Wallet(job.ownerKey) : randomWallet()
  const timestamp = String(job.timestamp)
  const metadata = job.metadata
  // The Explorer's signedFetch payload: method:path:timestamp:metadata, lowercased.
  const payload = [job.method, job.path, timestamp, metadata].join(':').toLowerCase()

  let chain
  if (job.ephemeral) {
    const ephemeral = randomWallet()
    const ephemeralIdentity = {
      address: ephemeral.address,
      publicKey: ephemeral.signingKey.publicKey,
      privateKey: ephemeral.privateKey
    }
    const identity = await ownerIdentity(job, owner, ephemeralIdentity)
    chain = Authenticator.signPayload(identity, payload)
  } else {
    const signature = await owner.signMessage(payload)
    chain = Authenticator.createSimpleAuthChain(payload, owner.address, signature)
  }

  const headers = {}
  chain.forEach((link, index) => {
    headers[`x-identity-auth-chain-${index}`] = JSON.stringify(link)
  })
  headers['x-identity-timestamp'] = timestamp
  headers['x-identity-metadata'] = metadata
  return headers
}

async function validate(job) {
  const result = await Authenticator.validateSignature(job.payload, job.chain, null, job.nowMs)
  return { ok: result.ok, message: result.message ?? null }
}

async function run(job) {
  return job.op === 'validate' ? validate(job) : sign(job)
}

if (process.argv.includes('--lines')) {
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (!line.trim()) continue
    const jobs = JSON.parse(line)
    process.stdout.write(JSON.stringify(await Promise.all(jobs.map(run))) + '\n')
  }
} else {
  const input = JSON.parse(await readStdin())
  const output = Array.isArray(input) ? await Promise.all(input.map(run)) : await run(input)
  process.stdout.write(JSON.stringify(output))
}
