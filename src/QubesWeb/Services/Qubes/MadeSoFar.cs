using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Qubes;

/// <summary>
/// What a job that makes a qube with its own root (clone, import) has made so far: its pool folder, its files, its
/// row, its domain. A failure or a cancel undoes exactly these, so nothing of the qube is left; a folder that was
/// there before the job (empty, made by hand) stays.
/// </summary>
public sealed class MadeSoFar
{
    private readonly string _name;
    private readonly string _dir;
    private readonly bool _madeDir;
    private readonly List<string> _files = [];

    /// <summary>Takes the qube's pool folder: refused when it holds anything, so no file of another qube is touched.</summary>
    public MadeSoFar(string name, string poolDir)
    {
        _name = name;
        _dir = Path.Combine(poolDir, name);
        _madeDir = !Directory.Exists(_dir);
        if (!_madeDir && Directory.EnumerateFileSystemEntries(_dir).Any())
            throw new QubeRuleException($"The pool already has a folder for '{name}' ({_dir}); remove or rename it first.");
        PrivateFiles.CreateFolder(_dir);
    }

    public string Folder => _dir;

    public bool RowAdded { get; set; }

    public bool Defined { get; set; }

    /// <summary>Notes a file about to be made, and returns its path in the qube's folder.</summary>
    public string File(string fileName)
    {
        var path = Path.Combine(_dir, fileName);
        _files.Add(path);
        return path;
    }

    public async Task UndoAsync(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate)
    {
        if (Defined)
            try { hypervisor.Undefine(_name); } catch (HypervisorException) { } catch (HypervisorUnavailableException) { }
        if (RowAdded)
            try { await inventory.RemoveAsync(_name, CancellationToken.None); } catch (QubeRuleException) { }
        foreach (var f in _files) System.IO.File.Delete(f);
        if (_madeDir && Directory.Exists(_dir) && !Directory.EnumerateFileSystemEntries(_dir).Any()) Directory.Delete(_dir);
        estate.InventoryChanged();
    }

    /// <summary>
    /// A job that died half-way: a qube that reached the inventory exists (reconciliation defines its domain); otherwise
    /// the files such a job makes go, and its folder when nothing else is in it.
    /// </summary>
    public static async Task RecoverAsync(JobContext job, Inventory inventory, string poolDir, IEnumerable<string> fileNames, CancellationToken ct)
    {
        if (await inventory.FindAsync(job.Target, ct) is not null)
        {
            await job.LogAsync($"{job.Target} reached the inventory; its domain is defined from it at reconciliation.");
            return;
        }
        var dir = Path.Combine(poolDir, job.Target);
        if (!Directory.Exists(dir)) return;
        foreach (var f in fileNames) System.IO.File.Delete(Path.Combine(dir, f));
        if (!Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
        await job.LogAsync($"Removed the half-made volumes in {dir}.");
    }
}
