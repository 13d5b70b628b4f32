using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace QubesWeb.Data.Qubes;

/// <summary>What a new qube is made of. Names of label, template and netvm are resolved and checked by the inventory.</summary>
public sealed record NewQube(
    string Name,
    QubeClass Class,
    string Label,
    string? Template = null,
    string? NetVm = null,
    bool ProvidesNetwork = false,
    int? MemoryMiB = null,
    int? VCpus = null,
    string Notes = "",
    bool Autostart = false,
    IReadOnlyDictionary<string, string>? Features = null,
    IReadOnlyList<NewVolume>? Volumes = null,
    Guid? Uuid = null);

/// <param name="Path">The file the domain's disk points at (for a root, its runtime overlay).</param>
/// <param name="FirstRevision">For a save_on_stop root (template, standalone): its committed revision 1.</param>
public sealed record NewVolume(VolumeKind Kind, string? Path, long VirtualSizeBytes, long UsageBytes = 0, NewRevision? FirstRevision = null,
    int? DetachSourceVolumeId = null, int? DetachSourceRevision = null);

/// <summary>A root's first committed revision: a flat qcow2 file.</summary>
public sealed record NewRevision(string Path, string Reason, long SizeBytes);

/// <summary>Property changes Qubes allows on an existing qube; null leaves a property as it is.</summary>
/// <param name="Template">A new template (AppVM/DispVM only, only while halted: see <see cref="Inventory.UpdateAsync(string, QubeChanges, bool?, CancellationToken)"/>).</param>
/// <param name="Features">Features to set (key to value) or remove (key to null); keys not named are left as they are.</param>
/// <param name="UpdateVm">A template's UpdateVM; <paramref name="DefaultUpdateVm"/> goes back to the console's default.</param>
public sealed record QubeChanges(
    string? Label = null,
    int? MemoryMiB = null,
    int? VCpus = null,
    string? NetVm = null,
    bool ClearNetVm = false,
    string? Notes = null,
    string? Template = null,
    IReadOnlyDictionary<string, string?>? Features = null,
    string? UpdateVm = null,
    bool DefaultUpdateVm = false);

/// <summary>Qubes' rules for feature keys and values (core-admin qubes/features.py keeps them as plain strings).</summary>
public static class QubeFeatureRules
{
    /// <summary>A boolean feature's value as Qubes reads it: absent, "", "0" and "False" are off.</summary>
    public static bool IsOn(string? value) => value is not (null or "" or "0" or "False" or "false");

    public const int MaxKeyLength = 128;
    public const int MaxValueLength = 4096;

    /// <summary>Why <paramref name="key"/> is not a valid feature key, or null when it is: 1 to 128 of [A-Za-z0-9_.-].</summary>
    public static string? KeyProblem(string? key)
    {
        if (string.IsNullOrEmpty(key)) return "A feature key is required.";
        if (key.Length > MaxKeyLength) return $"A feature key has at most {MaxKeyLength} characters; this one has {key.Length}.";
        var bad = key.Where(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')).Distinct().Take(5).ToList();
        return bad.Count == 0 ? null
            : "A feature key may contain only letters, digits, '_', '.' and '-'; not " +
              string.Join(", ", bad.Select(c => c == ' ' ? "spaces" : char.IsControl(c) || c > '~' ? $"U+{(int)c:X4}" : $"'{c}'")) + ".";
    }

    /// <summary>A template's or standalone's own update program, run by the update job inside it (without a shell).</summary>
    public const string UpdateCommandKey = "qubesweb-update-command";

    /// <summary>The value rules, and for keys the console acts on (the update command), what it must be to be run.</summary>
    public static string? ValueProblem(string key, string? value) =>
        ValueProblem(value) ?? (key == UpdateCommandKey ? UpdateCommandProblem(value) : null);

    /// <summary>
    /// Why <paramref name="command"/> cannot be an update command, or null. It is split at spaces and run as a program
    /// and its arguments, with no shell: a relative program would be looked up who knows where, and ';', '|', '$(...)'
    /// would reach the program as text rather than do what they look like. Refused when saved, not at the next update.
    /// </summary>
    public static string? UpdateCommandProblem(string? command)
    {
        if (string.IsNullOrWhiteSpace(command)) return null; // empty: the os-distribution's own command
        var program = command.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        if (!program.StartsWith('/'))
            return $"The update command must start with the program's absolute path, e.g. '/usr/bin/dnf -y upgrade'; '{QubeRules.Shown(program)}' is not one.";
        var shell = command.Where(c => ShellCharacters.Contains(c)).Distinct().Select(c => $"'{c}'").ToList();
        return shell.Count == 0 ? null
            : $"The update command is run as a program and its arguments, without a shell, so {string.Join(", ", shell)} would reach the program as text; remove {(shell.Count == 1 ? "it" : "them")}.";
    }

    private const string ShellCharacters = ";|&$`<>()\\'\"";

    public static string? ValueProblem(string? value)
    {
        if (value is null) return null;
        if (value.Length > MaxValueLength) return $"A feature value has at most {MaxValueLength} characters; this one has {value.Length}.";
        return value.Any(char.IsControl) ? "A feature value may not contain control characters."
            : QubeRules.InvisibleFormatProblem(value, "A feature value");
    }

    /// <summary>Throws <see cref="QubeRuleException"/> naming the key and the rule it breaks.</summary>
    public static void Validate(string key, string? value)
    {
        if (KeyProblem(key) is { } k) throw new QubeRuleException($"Invalid feature key '{QubeRules.Shown(key)}': {k}");
        if (ValueProblem(key, value) is { } v) throw new QubeRuleException($"Invalid value for feature '{key}': {v}");
    }
}

/// <summary>
/// The inventory's operations. Every change goes through here so Qubes' rules hold whoever asks; each operation uses
/// its own short-lived DbContext and either commits whole or writes nothing.
/// </summary>
public sealed partial class Inventory(IDbContextFactory<InventoryDbContext> contexts)
{
    public IDbContextFactory<InventoryDbContext> Contexts => contexts;

    /// <summary>All qubes with label, template, netvm, features and volumes, untracked.</summary>
    public async Task<List<Qube>> ListAsync(CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        return await Query(db).OrderBy(q => q.Name).ToListAsync(ct);
    }

    public async Task<Qube?> FindAsync(string name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        return await Query(db).FirstOrDefaultAsync(q => q.Name == name, ct);
    }

    /// <summary>The class of the qube named <paramref name="name"/> (one light query), or a rule error saying there is none.</summary>
    public async Task<QubeClass> ClassOfAsync(string name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        return await db.Qubes.Where(q => q.Name == name).Select(q => (QubeClass?)q.Class).FirstOrDefaultAsync(ct)
            ?? throw QubeRuleException.NoQube(name);
    }

    /// <summary>The qube named <paramref name="name"/>, or a rule error saying there is none.</summary>
    public async Task<Qube> GetAsync(string name, CancellationToken ct = default) =>
        await FindAsync(name, ct) ?? throw QubeRuleException.NoQube(name);

    /// <summary>
    /// The qube with what its libvirt domain is built from, including its template's volumes (an AppVM's root is its
    /// template's) and features (its OS family), and for a disposable its template's template's features. Lists leave those out: a thousand rows need not carry them.
    /// </summary>
    public async Task<Qube> GetForDomainAsync(string name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        return await Query(db).Include(q => q.Template).ThenInclude(t => t!.Volumes)
                   .Include(q => q.Template).ThenInclude(t => t!.Features)
                   // A disposable's OS family is its disposable template's template's.
                   .Include(q => q.Template).ThenInclude(t => t!.Template).ThenInclude(t => t!.Features).FirstOrDefaultAsync(q => q.Name == name, ct)
            ?? throw QubeRuleException.NoQube(name);
    }

    public async Task<List<Label>> LabelsAsync(CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        return await db.Labels.AsNoTracking().OrderBy(l => l.Id).ToListAsync(ct);
    }

    /// <summary>dom0 is always in the inventory, as the AdminVM; it is never defined in libvirt by the console.</summary>
    public async Task EnsureAdminVmAsync(CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        if (await db.Qubes.AnyAsync(q => q.Class == QubeClass.AdminVM, ct)) return;
        db.Qubes.Add(new Qube
        {
            Name = QubeRules.AdminVmName,
            Class = QubeClass.AdminVM,
            Uuid = Guid.Empty, // Xen's Domain-0 has the all-zero UUID
            LabelId = 8,
            MemoryMiB = 4096,
            VCpus = Environment.ProcessorCount,
            CreatedUtc = DateTime.UtcNow,
        });
        await db.SaveChangesAsync(ct);
    }

    public async Task<Qube> CreateAsync(NewQube request, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var qube = await AddAsync(db, request, ct);
        // Another creation beside this one may have taken the same lowest free address between our read and our
        // insert; the unique index refuses the second, which then takes the next free one. Bounded: each retry
        // means another qube was made, and the estate is not made thousands at a time.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await SaveNewAsync(db, request.Name, ct);
                return qube;
            }
            catch (AddressTakenException) when (attempt < 8)
            {
                await AssignAddressesAsync(db, qube, ct);
            }
        }
    }

    /// <summary>Creates several qubes in one transaction: all of them, or (on any broken rule) none.</summary>
    public async Task CreateAllAsync(IReadOnlyList<NewQube> requests, IReadOnlyDictionary<string, string>? adminFeatures = null, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        foreach (var r in requests)
        {
            await AddAsync(db, r, ct);
            // Saved one by one so later qubes can name earlier ones as template or netvm.
            await SaveNewAsync(db, r.Name, ct);
        }
        if (adminFeatures is not null)
        {
            var dom0 = await db.Qubes.Include(q => q.Features).FirstAsync(q => q.Class == QubeClass.AdminVM, ct);
            foreach (var (k, v) in adminFeatures) dom0.Features.Add(new QubeFeature { Key = k, Value = v });
            await db.SaveChangesAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    private static async Task<Qube> AddAsync(InventoryDbContext db, NewQube request, CancellationToken ct)
    {
        QubeRules.ValidateName(request.Name);
        QubeRules.ValidateNotes(request.Notes);
        // A new qube's features obey the same rules as features set later (a clone copies them, the demo seeds them).
        foreach (var (key, value) in request.Features ?? new Dictionary<string, string>()) QubeFeatureRules.Validate(key, value);
        if (request.Class == QubeClass.AdminVM)
            throw new QubeRuleException("There is exactly one AdminVM (dom0); another cannot be created.");
        if (await db.Qubes.AnyAsync(q => q.Name == request.Name, ct))
            throw Exists(request.Name);
        var label = await db.Labels.FirstOrDefaultAsync(l => l.Name == request.Label, ct)
            ?? throw new QubeRuleException($"There is no label '{QubeRules.Shown(request.Label)}'; choose one of: {string.Join(", ", await db.Labels.OrderBy(l => l.Id).Select(l => l.Name).ToListAsync(ct))}.");
        var template = request.Template is null ? null
            : await db.Qubes.Include(q => q.Features).FirstOrDefaultAsync(q => q.Name == request.Template, ct)
              ?? throw new QubeRuleException($"There is no template named '{QubeRules.Shown(request.Template)}'.");
        QubeRules.ValidateTemplate(request.Class, template);
        var memory = request.MemoryMiB ?? template?.MemoryMiB ?? QubeRules.DefaultMemoryMiB;
        var vcpus = request.VCpus ?? QubeRules.DefaultVCpus;
        QubeRules.ValidateResources(memory, vcpus);

        var qube = new Qube
        {
            Name = request.Name,
            Class = request.Class,
            Uuid = request.Uuid ?? Guid.NewGuid(),
            Label = label,
            Template = template,
            ProvidesNetwork = request.ProvidesNetwork,
            MemoryMiB = memory,
            VCpus = vcpus,
            // A request read from a job's JSON may say "notes": null; no notes are empty notes.
            Notes = request.Notes ?? "",
            Autostart = request.Autostart,
            CreatedUtc = DateTime.UtcNow,
            Features = (request.Features ?? new Dictionary<string, string>()).Select(kv => new QubeFeature { Key = kv.Key, Value = kv.Value }).ToList(),
            Volumes = (request.Volumes ?? []).Select(v => new Volume
            {
                Kind = v.Kind, Path = v.Path, VirtualSizeBytes = v.VirtualSizeBytes, UsageBytes = v.UsageBytes,
                // A volume made with its file was measured as it was made.
                UsageMeasuredUtc = v.Path is null ? null : DateTime.UtcNow,
                CurrentRevision = v.FirstRevision is null ? null : 1,
                // Written with the row in one save: the pin never lapses between the overlay's making and the row.
                DetachSourceVolumeId = v.DetachSourceVolumeId, DetachSourceRevision = v.DetachSourceRevision,
                Revisions = v.FirstRevision is null ? [] :
                [
                    new RootRevision { Number = 1, Path = v.FirstRevision.Path, Reason = v.FirstRevision.Reason, SizeBytes = v.FirstRevision.SizeBytes, CreatedUtc = DateTime.UtcNow },
                ],
            }).ToList(),
        };
        await AssignAddressesAsync(db, qube, ct);
        if (request.NetVm is not null)
        {
            var netvm = await db.Qubes.Include(q => q.NetVm).FirstOrDefaultAsync(q => q.Name == request.NetVm, ct)
                ?? throw QubeRuleException.NoQube(request.NetVm, "to use as netvm");
            QubeRules.ValidateNetVm(qube, netvm);
            qube.NetVm = netvm;
        }
        db.Qubes.Add(qube);
        return qube;
    }

    /// <summary>
    /// Gives <paramref name="qube"/> the lowest address no other row (saved, or added to this context and not saved
    /// yet) holds, and the MAC that goes with it.
    /// </summary>
    private static async Task AssignAddressesAsync(InventoryDbContext db, Qube qube, CancellationToken ct)
    {
        var taken = await db.Qubes.AsNoTracking().Where(q => q.IpAddress != null && q.Id != qube.Id).Select(q => q.IpAddress).ToListAsync(ct);
        taken.AddRange(db.Qubes.Local.Where(q => !ReferenceEquals(q, qube)).Select(q => q.IpAddress));
        qube.IpAddress = QubeAddresses.LowestFree(taken);
        qube.MacAddress = QubeAddresses.MacFor(qube.IpAddress);
    }

    /// <summary>The unique index on an address refused a new row: another creation took it first.</summary>
    private sealed class AddressTakenException(Exception inner) : Exception("The address was taken by another qube.", inner);

    private const int SqliteConstraintUnique = 2067; // SQLITE_CONSTRAINT_UNIQUE

    private static async Task SaveNewAsync(InventoryDbContext db, string name, CancellationToken ct)
    {
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException e) when (e.InnerException is SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: SqliteConstraintUnique } u
                                          && (u.Message.Contains("Qubes.IpAddress", StringComparison.Ordinal) || u.Message.Contains("Qubes.MacAddress", StringComparison.Ordinal)))
        {
            throw new AddressTakenException(e);
        }
        catch (DbUpdateException e) when (e.InnerException is SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: SqliteConstraintUnique })
        {
            // Another request took the name between our check and the insert: the unique index decides, one wins.
            // Only the unique index: a NOT NULL or foreign key failure is not "already exists", and is not hidden as it.
            throw Exists(name);
        }
    }

    /// <summary>Change an AppVM's template. Qubes allows it only while the AppVM is halted.</summary>
    public async Task SetTemplateAsync(string name, string templateName, bool qubeIsRunning, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var qube = await db.Qubes.FirstOrDefaultAsync(q => q.Name == name, ct) ?? throw QubeRuleException.NoQube(name);
        QubeRules.EnsureNotAdminVm(qube);
        await ApplyTemplateAsync(db, qube, templateName, qubeIsRunning, ct);
        await db.SaveChangesAsync(ct);
    }

    private static async Task ApplyTemplateAsync(InventoryDbContext db, Qube qube, string templateName, bool qubeIsRunning, CancellationToken ct)
    {
        var name = qube.Name;
        var template = await db.Qubes.Include(q => q.Features).FirstOrDefaultAsync(q => q.Name == templateName, ct)
            ?? throw new QubeRuleException($"There is no template named '{QubeRules.Shown(templateName)}'.");
        if (qube.Class is not (QubeClass.AppVM or QubeClass.DispVM))
            throw new QubeRuleException($"'{name}' is {QubeRules.Article(qube.Class)}; only AppVMs and DispVMs have a template.");
        QubeRules.ValidateTemplate(qube.Class, template);
        if (qubeIsRunning)
            throw new QubeRuleException($"'{name}' is running; its template can change only while it is halted. Shut it down first.");
        qube.TemplateId = template.Id;
    }

    /// <summary>Applies <paramref name="changes"/> whole or not at all. A template change is refused here: use the overload that says whether the qube runs.</summary>
    public Task UpdateAsync(string name, QubeChanges changes, CancellationToken ct = default) => UpdateAsync(name, changes, null, ct);

    /// <summary>
    /// Sets the default disposable template (Qubes' global <c>default_dispvm</c>, kept as a feature of dom0), or clears
    /// it with null. It must be a disposable template.
    /// </summary>
    public async Task SetDefaultDispvmAsync(string? name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        if (name is not null)
        {
            var dvm = await db.Qubes.Include(q => q.Features).FirstOrDefaultAsync(q => q.Name == name, ct) ?? throw QubeRuleException.NoQube(name);
            if (!dvm.IsDisposableTemplate)
                throw new QubeRuleException($"'{name}' is not a disposable template; turn on \"Disposable template\" on its page first.");
        }
        var dom0 = await db.Qubes.Include(q => q.Features).FirstAsync(q => q.Class == QubeClass.AdminVM, ct);
        var existing = dom0.Features.FirstOrDefault(f => f.Key == DisposableFeatures.DefaultDispvm);
        if (name is null) { if (existing is not null) dom0.Features.Remove(existing); }
        else if (existing is not null) existing.Value = name;
        else dom0.Features.Add(new QubeFeature { Key = DisposableFeatures.DefaultDispvm, Value = name });
        await db.SaveChangesAsync(ct);
    }

    /// <summary>
    /// Applies <paramref name="changes"/> in one transaction: every rule is checked first, and a broken one changes
    /// nothing. <paramref name="qubeIsRunning"/> is whether libvirt reports the qube as anything but halted; a template
    /// change needs it to be false (null: not known, so a template change is refused).
    /// </summary>
    public async Task UpdateAsync(string name, QubeChanges changes, bool? qubeIsRunning, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var qube = await db.Qubes.Include(q => q.NetVm).Include(q => q.Features).FirstOrDefaultAsync(q => q.Name == name, ct) ?? throw QubeRuleException.NoQube(name);
        QubeRules.EnsureNotAdminVm(qube);
        if (changes.Label is not null)
            qube.LabelId = (await db.Labels.FirstOrDefaultAsync(l => l.Name == changes.Label, ct)
                ?? throw new QubeRuleException($"There is no label '{QubeRules.Shown(changes.Label)}'.")).Id;
        QubeRules.ValidateResources(changes.MemoryMiB ?? qube.MemoryMiB, changes.VCpus ?? qube.VCpus);
        qube.MemoryMiB = changes.MemoryMiB ?? qube.MemoryMiB;
        qube.VCpus = changes.VCpus ?? qube.VCpus;
        if (changes.Notes is not null)
        {
            QubeRules.ValidateNotes(changes.Notes);
            qube.Notes = changes.Notes;
        }
        if (changes.ClearNetVm) qube.NetVm = null;
        else if (changes.NetVm is not null)
        {
            var netvm = await db.Qubes.Include(q => q.NetVm).ThenInclude(n => n!.NetVm).FirstOrDefaultAsync(q => q.Name == changes.NetVm, ct)
                ?? throw QubeRuleException.NoQube(changes.NetVm, "to use as netvm");
            QubeRules.ValidateNetVm(qube, netvm);
            qube.NetVm = netvm;
        }
        if (changes.DefaultUpdateVm) qube.UpdateVmId = null;
        else if (changes.UpdateVm is not null)
        {
            var updateVm = await db.Qubes.FirstOrDefaultAsync(q => q.Name == changes.UpdateVm, ct)
                ?? throw QubeRuleException.NoQube(changes.UpdateVm, "to use as UpdateVM");
            QubeRules.ValidateUpdateVm(qube, updateVm);
            qube.UpdateVmId = updateVm.Id;
        }
        if (changes.Template is not null)
        {
            if (qubeIsRunning is null)
                throw new QubeRuleException($"The template of '{name}' can change only while it is halted, and whether it runs is not known.");
            await ApplyTemplateAsync(db, qube, changes.Template, qubeIsRunning.Value, ct);
        }
        if (changes.Features is not null)
        {
            foreach (var (key, value) in changes.Features)
            {
                // Only what is set is checked: a key that broke the rules before them can still be removed.
                if (value is not null) QubeFeatureRules.Validate(key, value);
                var existing = qube.Features.FirstOrDefault(f => f.Key == key);
                if (value is null) { if (existing is not null) qube.Features.Remove(existing); }
                else if (existing is not null) existing.Value = value;
                else qube.Features.Add(new QubeFeature { Key = key, Value = value });
            }
        }
        await db.SaveChangesAsync(ct);
    }

    /// <summary>
    /// Throws when <paramref name="name"/> may not be removed: dom0, a template that qubes depend on, a netvm that
    /// qubes use; the error names them, so the user knows what to change first. Writes nothing.
    /// </summary>
    public async Task EnsureRemovableAsync(string name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var qube = await db.Qubes.AsNoTracking().FirstOrDefaultAsync(q => q.Name == name, ct) ?? throw QubeRuleException.NoQube(name);
        await EnsureRemovableAsync(db, qube, ct);
    }

    private static async Task EnsureRemovableAsync(InventoryDbContext db, Qube qube, CancellationToken ct)
    {
        var name = qube.Name;
        QubeRules.EnsureNotAdminVm(qube);
        var dependents = await db.Qubes.Where(q => q.TemplateId == qube.Id).OrderBy(q => q.Name).Select(q => q.Name).ToListAsync(ct);
        if (dependents.Count > 0)
            throw new QubeRuleException($"'{name}' is the template of {dependents.Count} qube(s): {string.Join(", ", dependents)}. Switch them to another template or remove them first.");
        // An instant copy still reading one of its revisions: removing the files would take its data away.
        var copies = await db.Volumes.Where(v => v.DetachSourceVolumeId != null && db.Volumes.Any(s => s.Id == v.DetachSourceVolumeId && s.QubeId == qube.Id))
            .Select(v => db.Qubes.Where(q => q.Id == v.QubeId).Select(q => q.Name).First()).OrderBy(n => n).ToListAsync(ct);
        if (copies.Count > 0)
            throw new QubeRuleException($"'{name}' still holds data of {copies.Count} qube(s) made from it: {string.Join(", ", copies)}. Wait until they are independent (their detach finished), or remove them first.");
        var clients = await db.Qubes.Where(q => q.NetVmId == qube.Id).OrderBy(q => q.Name).Select(q => q.Name).ToListAsync(ct);
        if (clients.Count > 0)
            throw new QubeRuleException($"'{name}' is the netvm of {clients.Count} qube(s): {string.Join(", ", clients)}. Give them another netvm first.");
        var updated = await db.Qubes.Where(q => q.UpdateVmId == qube.Id).OrderBy(q => q.Name).Select(q => q.Name).ToListAsync(ct);
        if (updated.Count > 0)
            throw new QubeRuleException($"'{name}' is the UpdateVM of {updated.Count} template(s): {string.Join(", ", updated)}. Give them another UpdateVM first.");
    }

    /// <summary>
    /// Remove a qube from the inventory. Refused for dom0, for a template that qubes depend on and for a netvm that
    /// qubes use; the error names them, so the user knows what to change first.
    /// </summary>
    public async Task<Qube> RemoveAsync(string name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var qube = await db.Qubes.Include(q => q.Volumes).FirstOrDefaultAsync(q => q.Name == name, ct) ?? throw QubeRuleException.NoQube(name);
        await EnsureRemovableAsync(db, qube, ct);
        db.Qubes.Remove(qube);
        await db.SaveChangesAsync(ct);
        return qube;
    }

    public async Task SetVolumeUsageAsync(int volumeId, long usageBytes, long virtualSizeBytes, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        await db.Volumes.Where(v => v.Id == volumeId).ExecuteUpdateAsync(s => s
            .SetProperty(v => v.UsageBytes, usageBytes)
            .SetProperty(v => v.VirtualSizeBytes, virtualSizeBytes)
            .SetProperty(v => v.UsageMeasuredUtc, DateTime.UtcNow), ct);
    }

    /// <summary>Attaches an installation medium (null: none) and says whether the qube boots from it first.</summary>
    public async Task SetInstallMediaAsync(string name, string? path, bool bootFromIt, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var n = await db.Qubes.Where(q => q.Name == name).ExecuteUpdateAsync(s => s
            .SetProperty(q => q.InstallMedia, path)
            .SetProperty(q => q.BootFromMedia, path != null && bootFromIt), ct);
        if (n == 0) throw QubeRuleException.NoQube(name);
    }

    private static IQueryable<Qube> Query(InventoryDbContext db) =>
        db.Qubes.AsNoTracking()
            .Include(q => q.Label).Include(q => q.Template).Include(q => q.NetVm).Include(q => q.UpdateVm)
            .Include(q => q.Features).Include(q => q.Volumes).ThenInclude(v => v.Revisions)
            .Include(q => q.FirewallRules)
            .AsSplitQuery();

    private static QubeRuleException Exists(string name) => new($"A qube named '{name}' already exists; choose another name.");

}
