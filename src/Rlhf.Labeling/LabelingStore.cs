using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Rlhf.Feedback;
using Rlhf.IO;

namespace Rlhf.Labeling;

/// <summary>
/// The labeling project in its SQLite database: items (prompts with completions in the stored order), labelers
/// (token hashes), assignments (each item to at most <c>overlap</c> labelers), rankings and thumbs. A write returns
/// only after its transaction committed with synchronous=FULL (concurrent writes share one commit, see
/// <see cref="GroupCommit"/>), so what a call returned is on disk. A labeler's ranking of an item is one row
/// (primary key): re-submitting replaces it and bumps its revision, so double submits never duplicate.
/// </summary>
public sealed partial class LabelingStore
{
    private const string Source = "labeling-app";

    private readonly GroupCommit writes;

    private LabelingStore(LabelingDatabase database)
    {
        Database = database;
        writes = new GroupCommit(database);
    }

    public LabelingDatabase Database { get; }

    /// <summary>Whether <paramref name="path"/> holds a labeling project.</summary>
    public static bool Exists(string path)
    {
        if (!File.Exists(path)) return false;
        var db = LabelingDatabase.Open(path);
        using var c = db.Connect();
        return Count(c, "SELECT COUNT(*) FROM project") == 1;
    }

    /// <summary>Creates the project; <paramref name="organiserToken"/> is the organiser's token (shown once, stored hashed).</summary>
    public static LabelingStore Create(string path, IEnumerable<CompletionSet> sets, int overlap, string? instructions, out string organiserToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(overlap, 1);
        var db = LabelingDatabase.Open(path);
        organiserToken = Tokens.NewToken();
        using (var c = db.Connect())
        using (var tx = c.BeginTransaction())
        {
            if (Count(c, "SELECT COUNT(*) FROM project", tx) != 0) throw new InvalidInputException($"{db.Path} already holds a labeling project");
            Run(c, tx, "INSERT INTO project(id, instructions, overlap, organiser_token_hash, csrf_key, created_utc) VALUES (1, $i, $k, $h, $key, $t)",
                ("$i", instructions ?? LabelerInstructions.Default), ("$k", overlap), ("$h", Tokens.Hash(organiserToken)),
                ("$key", System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), ("$t", Now()));
            tx.Commit();
        }

        var store = new LabelingStore(db);
        store.AddItems(sets);
        return store;
    }

    public static LabelingStore Open(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{Path.GetFullPath(path)}: no such database; start `rlhf label serve --completions FILE --db {path}` to create it");
        var db = LabelingDatabase.Open(path);
        using var c = db.Connect();
        if (Count(c, "SELECT COUNT(*) FROM project") != 1) throw new InvalidInputException($"{db.Path} holds no labeling project");
        return new LabelingStore(db);
    }

    /// <summary>Adds prompts not yet in the project; a prompt already there must have the same completions in the same order.</summary>
    public int AddItems(IEnumerable<CompletionSet> sets)
    {
        int added = 0;
        using var c = Database.Connect();
        using var tx = c.BeginTransaction();
        foreach (var set in sets)
        {
            var existing = Scalar(c, tx, "SELECT id FROM items WHERE prompt_id = $p", ("$p", set.PromptId));
            if (existing is long id)
            {
                var ids = Strings(c, tx, "SELECT completion_id FROM completions WHERE item_id = $i ORDER BY position", ("$i", id));
                if (!ids.SequenceEqual(set.Completions.Select(x => x.Id)))
                {
                    throw new InvalidInputException($"prompt \"{set.PromptId}\" is already in the project with completions [{string.Join(", ", ids)}], not [{string.Join(", ", set.Completions.Select(x => x.Id))}]");
                }

                continue;
            }

            long itemId = (long)Scalar(c, tx, "INSERT INTO items(prompt_id, prompt) VALUES ($p, $q) RETURNING id", ("$p", set.PromptId), ("$q", set.Prompt))!;
            for (int i = 0; i < set.Completions.Count; i++)
            {
                Run(c, tx, "INSERT INTO completions(item_id, position, completion_id, text) VALUES ($i, $n, $c, $t)",
                    ("$i", itemId), ("$n", i), ("$c", set.Completions[i].Id), ("$t", set.Completions[i].Text));
            }

            added++;
        }

        tx.Commit();
        return added;
    }

    public string Instructions => (string)Query1("SELECT instructions FROM project")!;

    public int Overlap => (int)(long)Query1("SELECT overlap FROM project")!;

    internal byte[] AntiForgeryKey => (byte[])Query1("SELECT csrf_key FROM project")!;

    public void UpdateSettings(string? instructions, int? overlap)
    {
        if (overlap is < 1) throw LabelingException.BadRequest($"overlap must be at least 1, got {overlap}");
        if (instructions is not null && instructions.Trim().Length == 0) throw LabelingException.BadRequest("instructions must not be empty");
        using var c = Database.Connect();
        Run(c, null, "UPDATE project SET instructions = COALESCE($i, instructions), overlap = COALESCE($k, overlap)",
            ("$i", (object?)instructions ?? DBNull.Value), ("$k", (object?)overlap ?? DBNull.Value));
    }

    [GeneratedRegex("^[A-Za-z0-9._@-]{1,64}$")]
    private static partial Regex LabelerName();

    /// <summary>Why <paramref name="name"/> cannot be a labeler's name, or null when it can (checked again on adding).</summary>
    public static string? LabelerNameProblem(string name) =>
        LabelerName().IsMatch(name) ? null : $"labeler name \"{name}\" must be 1-64 characters of letters, digits, '.', '_', '@' or '-'";

    public bool HasLabeler(string name)
    {
        using var c = Database.Connect();
        return Scalar(c, null, "SELECT 1 FROM labelers WHERE name = $n", ("$n", name)) is not null;
    }

    public NewLabeler AddLabeler(string name)
    {
        if (LabelerNameProblem(name) is { } problem) throw LabelingException.BadRequest(problem);
        string token = Tokens.NewToken();
        using var c = Database.Connect();
        try
        {
            Run(c, null, "INSERT INTO labelers(name, token_hash, created_utc) VALUES ($n, $h, $t)", ("$n", name), ("$h", Tokens.Hash(token)), ("$t", Now()));
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            throw LabelingException.Conflict($"a labeler named \"{name}\" already exists");
        }

        return new NewLabeler(name, token);
    }

    /// <summary>Replaces the organiser token (the old link stops working) and returns the new one.</summary>
    public string RotateOrganiserToken()
    {
        string token = Tokens.NewToken();
        using var c = Database.Connect();
        Run(c, null, "UPDATE project SET organiser_token_hash = $h", ("$h", Tokens.Hash(token)));
        return token;
    }

    public LabelerIdentity? FindLabeler(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 200) return null;
        byte[] hash = Tokens.Hash(token);
        using var c = Database.Connect();
        using var cmd = Command(c, null, "SELECT id, name FROM labelers WHERE token_hash = $h", ("$h", hash));
        using var r = cmd.ExecuteReader();
        return r.Read() ? new LabelerIdentity(r.GetInt64(0), r.GetString(1), hash) : null;
    }

    public byte[]? OrganiserHash(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 200) return null;
        byte[] hash = Tokens.Hash(token);
        var stored = (byte[])Query1("SELECT organiser_token_hash FROM project")!;
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(hash, stored) ? hash : null;
    }

    /// <summary>
    /// Tops the labeler's queue up to <paramref name="pending"/> unranked open items, taking items that are short of
    /// the overlap (those closest to it first, so items reach consensus early). Returns how many were assigned.
    /// The IMMEDIATE transaction serialises claims, so no item goes to more than overlap labelers.
    /// </summary>
    public int Claim(long labelerId, int pending) => ClaimAsync(labelerId, pending).GetAwaiter().GetResult();

    public Task<int> ClaimAsync(long labelerId, int pending) => writes.Run((c, tx) => ClaimIn(c, tx, labelerId, pending));

    private static int ClaimIn(SqliteConnection c, SqliteTransaction tx, long labelerId, int pending)
    {
        long open = Count(c, """
            SELECT COUNT(*) FROM assignments a JOIN items i ON i.id = a.item_id
            LEFT JOIN rankings r ON r.labeler_id = a.labeler_id AND r.item_id = a.item_id
            WHERE a.labeler_id = $l AND i.closed = 0 AND r.item_id IS NULL
            """, tx, ("$l", labelerId));
        int want = (int)Math.Max(0, pending - open);
        int added = 0;
        if (want > 0)
        {
            added = Run(c, tx, """
                INSERT INTO assignments(labeler_id, item_id)
                SELECT $l, i.id FROM items i
                WHERE i.closed = 0
                  AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.labeler_id = $l)
                  AND (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id) < (SELECT overlap FROM project)
                ORDER BY (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id) DESC, i.id
                LIMIT $n
                """, ("$l", labelerId), ("$n", want));
        }

        return added;
    }

    public List<AssignmentSummary> Assignments(long labelerId)
    {
        using var c = Database.Connect();
        using var cmd = Command(c, null, """
            SELECT a.item_id, i.prompt_id, r.item_id IS NOT NULL, i.closed FROM assignments a
            JOIN items i ON i.id = a.item_id
            LEFT JOIN rankings r ON r.labeler_id = a.labeler_id AND r.item_id = a.item_id
            WHERE a.labeler_id = $l ORDER BY a.rowid
            """, ("$l", labelerId));
        using var r = cmd.ExecuteReader();
        var list = new List<AssignmentSummary>();
        while (r.Read()) list.Add(new AssignmentSummary(r.GetInt64(0), r.GetString(1), r.GetBoolean(2), r.GetBoolean(3)));
        return list;
    }

    /// <summary>The item as the labeler sees it; 403 when it is not assigned to them (whether or not it exists).</summary>
    public ItemView GetItem(long labelerId, long itemId)
    {
        using var c = Database.Connect();
        using var tx = c.BeginTransaction(deferred: true);
        RequireAssigned(c, tx, labelerId, itemId);
        string promptId = "", prompt = "";
        bool closed = false;
        using (var cmd = Command(c, tx, "SELECT prompt_id, prompt, closed FROM items WHERE id = $i", ("$i", itemId)))
        using (var r = cmd.ExecuteReader())
        {
            r.Read();
            (promptId, prompt, closed) = (r.GetString(0), r.GetString(1), r.GetBoolean(2));
        }

        var completions = LoadCompletions(c, tx, itemId);
        var stored = Scalar(c, tx, "SELECT ranks || ';' || revision FROM rankings WHERE labeler_id = $l AND item_id = $i", ("$l", labelerId), ("$i", itemId)) as string;
        Rank[]? ranks = null;
        int revision = 0;
        if (stored is not null)
        {
            int split = stored.LastIndexOf(';');
            ranks = RankInput.FromStored(stored[..split]);
            revision = int.Parse(stored[(split + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }

        var thumbs = new bool?[completions.Count];
        using (var cmd = Command(c, tx, "SELECT position, up FROM thumbs WHERE labeler_id = $l AND item_id = $i", ("$l", labelerId), ("$i", itemId)))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) thumbs[r.GetInt32(0)] = r.GetBoolean(1);
        }

        tx.Commit();
        return new ItemView(itemId, promptId, prompt, completions, ranks, thumbs, closed, revision);
    }

    /// <summary>
    /// Stores (or replaces) the labeler's ranking of the item and returns its revision (unchanged by an identical
    /// re-submit). <paramref name="ranksForCount"/> gets the item's completion count and returns the validated ranks;
    /// 403 when the item is not the labeler's, 409 when it is closed.
    /// </summary>
    public int SaveRanking(long labelerId, long itemId, Func<int, Rank[]> ranksForCount) => SaveRankingAsync(labelerId, itemId, ranksForCount).GetAwaiter().GetResult();

    public Task<int> SaveRankingAsync(long labelerId, long itemId, Func<int, Rank[]> ranksForCount) => writes.Run((c, tx) => SaveRankingIn(c, tx, labelerId, itemId, ranksForCount));

    private static int SaveRankingIn(SqliteConnection c, SqliteTransaction tx, long labelerId, long itemId, Func<int, Rank[]> ranksForCount)
    {
        RequireAssigned(c, tx, labelerId, itemId);
        RequireOpen(c, tx, itemId);
        int n = (int)Count(c, "SELECT COUNT(*) FROM completions WHERE item_id = $i", tx, ("$i", itemId));
        Rank[] ranks = ranksForCount(n);
        if (ranks.Length != n) throw LabelingException.BadRequest($"{ranks.Length} ranks for {n} completions");
        long revision = (long)Scalar(c, tx, """
            INSERT INTO rankings(labeler_id, item_id, ranks, updated_utc) VALUES ($l, $i, $r, $t)
            ON CONFLICT (labeler_id, item_id) DO UPDATE SET ranks = excluded.ranks, updated_utc = excluded.updated_utc,
                revision = revision + (ranks <> excluded.ranks)
            RETURNING revision
            """, ("$l", labelerId), ("$i", itemId), ("$r", RankInput.Format(ranks)), ("$t", Now()))!;
        return (int)revision;
    }

    /// <summary>Thumbs up (true), down (false) or cleared (null) for one completion of an assigned, open item.</summary>
    public void SaveThumb(long labelerId, long itemId, int position, bool? up) => SaveThumbAsync(labelerId, itemId, position, up).GetAwaiter().GetResult();

    public Task SaveThumbAsync(long labelerId, long itemId, int position, bool? up) =>
        writes.Run((c, tx) => { SaveThumbIn(c, tx, labelerId, itemId, position, up); return 0; });

    private static void SaveThumbIn(SqliteConnection c, SqliteTransaction tx, long labelerId, long itemId, int position, bool? up)
    {
        RequireAssigned(c, tx, labelerId, itemId);
        RequireOpen(c, tx, itemId);
        int n = (int)Count(c, "SELECT COUNT(*) FROM completions WHERE item_id = $i", tx, ("$i", itemId));
        if (position < 0 || position >= n) throw LabelingException.BadRequest($"position {position} is out of range; this item has completions 0..{n - 1}");
        if (up is null)
        {
            Run(c, tx, "DELETE FROM thumbs WHERE labeler_id = $l AND item_id = $i AND position = $p", ("$l", labelerId), ("$i", itemId), ("$p", position));
        }
        else
        {
            Run(c, tx, """
                INSERT INTO thumbs(labeler_id, item_id, position, up, updated_utc) VALUES ($l, $i, $p, $u, $t)
                ON CONFLICT (labeler_id, item_id, position) DO UPDATE SET up = excluded.up, updated_utc = excluded.updated_utc
                """, ("$l", labelerId), ("$i", itemId), ("$p", position), ("$u", up.Value ? 1 : 0), ("$t", Now()));
        }

    }

    /// <summary>Closes every open item that has at least overlap rankings (labelers can no longer change them). Returns how many.</summary>
    public int CloseComplete()
    {
        using var c = Database.Connect();
        return Run(c, null, """
            UPDATE items SET closed = 1 WHERE closed = 0
              AND (SELECT COUNT(*) FROM rankings r WHERE r.item_id = items.id) >= (SELECT overlap FROM project)
            """);
    }

    /// <summary>Closes or reopens one item by prompt id.</summary>
    public void SetClosed(string promptId, bool closed)
    {
        using var c = Database.Connect();
        if (Run(c, null, "UPDATE items SET closed = $c WHERE prompt_id = $p", ("$c", closed ? 1 : 0), ("$p", promptId)) == 0)
        {
            throw new LabelingException(404, $"no item with prompt_id \"{promptId}\"");
        }
    }

    public ProjectStatus Status(AgreementOptions? options = null, int listShort = 50)
    {
        using var c = Database.Connect();
        using var tx = c.BeginTransaction(deferred: true);
        int overlap = (int)Count(c, "SELECT overlap FROM project", tx);
        var labelers = new List<LabelerProgress>();
        using (var cmd = Command(c, tx, """
            SELECT l.name,
              (SELECT COUNT(*) FROM assignments a WHERE a.labeler_id = l.id),
              (SELECT COUNT(*) FROM rankings r WHERE r.labeler_id = l.id),
              (SELECT COUNT(*) FROM thumbs t WHERE t.labeler_id = l.id)
            FROM labelers l ORDER BY l.name
            """))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) labelers.Add(new LabelerProgress(r.GetString(0), r.GetInt32(1), r.GetInt32(2), r.GetInt32(3)));
        }

        var shortList = new List<ItemProgress>();
        int shortCount = 0;
        using (var cmd = Command(c, tx, """
            SELECT i.id, i.prompt_id, (SELECT COUNT(*) FROM rankings r WHERE r.item_id = i.id) AS n, i.closed
            FROM items i WHERE n < $k ORDER BY n DESC, i.id
            """, ("$k", overlap)))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                if (shortCount++ < listShort) shortList.Add(new ItemProgress(r.GetInt64(0), r.GetString(1), r.GetInt32(2), r.GetBoolean(3)));
            }
        }

        int items = (int)Count(c, "SELECT COUNT(*) FROM items", tx);
        int closed = (int)Count(c, "SELECT COUNT(*) FROM items WHERE closed = 1", tx);
        var snapshot = Snapshot(c, tx);
        tx.Commit();
        return new ProjectStatus(overlap, items, closed, snapshot.Rankings.Count, shortCount, labelers, shortList,
            AgreementReport.Compute(snapshot.Rankings, options));
    }

    public LabelingSnapshot Snapshot()
    {
        using var c = Database.Connect();
        using var tx = c.BeginTransaction(deferred: true);
        var snapshot = Snapshot(c, tx);
        tx.Commit();
        return snapshot;
    }

    /// <summary>
    /// Writes every ranking (and thumb) as JSONL in the format <see cref="RankingImporter"/> reads and `rlhf pairs`
    /// takes: one <c>{"labeler", "prompt_id", "ranks": {completion_id: rank | "F"}}</c> per ranking, then one
    /// <c>{"labeler", "prompt_id", "completion_id", "thumb": "up" | "down"}</c> per thumb. Returns (rankings, thumbs).
    /// </summary>
    public (int Rankings, int Thumbs) Export(string path, bool overwrite)
    {
        var s = Snapshot();
        RankingFiles.Write(path, s.Rankings, s.Thumbs, s.Sets, overwrite);
        return (s.Rankings.Count, s.Thumbs.Count);
    }

    private static LabelingSnapshot Snapshot(SqliteConnection c, SqliteTransaction tx)
    {
        var byId = new Dictionary<long, CompletionSet>();
        var sets = new Dictionary<string, CompletionSet>(StringComparer.Ordinal);
        using (var cmd = Command(c, tx, "SELECT i.id, i.prompt_id, i.prompt, c.completion_id, c.text FROM items i JOIN completions c ON c.item_id = i.id ORDER BY i.id, c.position"))
        using (var r = cmd.ExecuteReader())
        {
            long current = -1;
            string promptId = "", prompt = "";
            var list = new List<Completion>();
            while (true)
            {
                bool more = r.Read();
                if (current >= 0 && (!more || r.GetInt64(0) != current))
                {
                    var set = new CompletionSet(promptId, prompt, list);
                    byId[current] = set;
                    sets[promptId] = set;
                    list = [];
                }

                if (!more) break;
                (current, promptId, prompt) = (r.GetInt64(0), r.GetString(1), r.GetString(2));
                list.Add(new Completion(r.GetString(3), r.GetString(4)));
            }
        }

        var rankings = new List<Ranking>();
        using (var cmd = Command(c, tx, "SELECT l.name, r.item_id, r.ranks FROM rankings r JOIN labelers l ON l.id = r.labeler_id ORDER BY r.item_id, l.name"))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) rankings.Add(new Ranking(r.GetString(0), byId[r.GetInt64(1)].PromptId, RankInput.FromStored(r.GetString(2)), Source));
        }

        var thumbs = new List<ThumbFeedback>();
        using (var cmd = Command(c, tx, "SELECT l.name, t.item_id, t.position, t.up FROM thumbs t JOIN labelers l ON l.id = t.labeler_id ORDER BY t.item_id, l.name, t.position"))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                var set = byId[r.GetInt64(1)];
                thumbs.Add(new ThumbFeedback(r.GetString(0), set.PromptId, set.Completions[r.GetInt32(2)].Id, r.GetBoolean(3), Source));
            }
        }

        return new LabelingSnapshot(sets, rankings, thumbs);
    }

    private static List<Completion> LoadCompletions(SqliteConnection c, SqliteTransaction tx, long itemId)
    {
        var list = new List<Completion>();
        using var cmd = Command(c, tx, "SELECT completion_id, text FROM completions WHERE item_id = $i ORDER BY position", ("$i", itemId));
        using var r = cmd.ExecuteReader();
        while (r.Read()) list.Add(new Completion(r.GetString(0), r.GetString(1)));
        return list;
    }

    private static void RequireAssigned(SqliteConnection c, SqliteTransaction tx, long labelerId, long itemId)
    {
        if (Count(c, "SELECT COUNT(*) FROM assignments WHERE labeler_id = $l AND item_id = $i", tx, ("$l", labelerId), ("$i", itemId)) == 0)
        {
            throw LabelingException.Forbidden($"item {itemId} is not assigned to you");
        }
    }

    private static void RequireOpen(SqliteConnection c, SqliteTransaction tx, long itemId)
    {
        if (Count(c, "SELECT closed FROM items WHERE id = $i", tx, ("$i", itemId)) != 0)
        {
            throw LabelingException.Conflict($"item {itemId} is closed; its rankings can no longer change");
        }
    }

    private object? Query1(string sql)
    {
        using var c = Database.Connect();
        return Scalar(c, null, sql);
    }

    private static string Now() => DateTime.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture);

    private static SqliteCommand Command(SqliteConnection c, SqliteTransaction? tx, string sql, params (string Name, object Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in args) cmd.Parameters.AddWithValue(name, value);
        return cmd;
    }

    private static int Run(SqliteConnection c, SqliteTransaction? tx, string sql, params (string, object)[] args)
    {
        using var cmd = Command(c, tx, sql, args);
        return cmd.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection c, SqliteTransaction? tx, string sql, params (string, object)[] args)
    {
        using var cmd = Command(c, tx, sql, args);
        return cmd.ExecuteScalar();
    }

    private static long Count(SqliteConnection c, string sql, SqliteTransaction? tx = null, params (string, object)[] args) =>
        Convert.ToInt64(Scalar(c, tx, sql, args) ?? 0L, System.Globalization.CultureInfo.InvariantCulture);

    private static List<string> Strings(SqliteConnection c, SqliteTransaction tx, string sql, params (string, object)[] args)
    {
        using var cmd = Command(c, tx, sql, args);
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) list.Add(r.GetString(0));
        return list;
    }
}
