// Creates a blob container in Azurite (Azure's storage emulator) at 127.0.0.1:PORT, with the
// emulator's well-known development account: node azure-container.mjs PORT NAME
import { BlobServiceClient } from '@azure/storage-blob'

const [port, name] = process.argv.slice(2)
const key = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
const connection = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${key};` +
  `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`
await BlobServiceClient.fromConnectionString(connection).getContainerClient(name).createIfNotExists()
