import { ipcacheContract } from '../../test/datapath/helpers/contract.js';
import { FakeIpcacheManager } from './fake.js';

ipcacheContract('fake', () => {
  const ipcache = new FakeIpcacheManager();
  return {
    ipcache,
    injectDrift: () => {
      ipcache.kernel.delete('10.0.0.1/32');
      ipcache.kernel.set('10.0.0.9/32', { identity: 999 });
    },
  };
});
